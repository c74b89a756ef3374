package pipeline

import "context"

// startStream starts the stream lane. The stream lane's own change fills it in.
func (p *Pipeline) startStream(ctx context.Context) error { return nil }
