package pipeline

import "context"

// startQuery starts the query lane. The query lane's own change fills it in.
func (p *Pipeline) startQuery(ctx context.Context) error { return nil }
