package query

import (
	"sync"

	"github.com/duckdb/duckdb-go/v2"
)

// A dashboard sends the same few statements again and again. Before DuckDB
// runs one, the engine asks the gate about it twice (the statement, then
// its wrapper) and prepares it once only to learn its column types: on a
// query of a few milliseconds, about as long as the query itself. plans
// keeps, per statement text, what that work found for a statement the gate
// allowed: its columns' names and types. The gate's verdict depends on the
// text alone (its allowlist is fixed), and a wrapper differs from the one
// checked only in the numbers the engine writes into it (the budget's id,
// the page's offset and limit), so a statement met again goes straight to
// preparing its wrapper. The column types depend on the views too, so the
// cache holds one snapshot generation's plans and empties when the views
// move to another. A refused statement is never kept: it is refused anew.

// planCacheEntries bounds how many statements plans keeps; past it, it
// starts again empty. planCacheMaxText is the longest text kept, so the
// cache holds at most a few MiB however hostile the statements.
const (
	planCacheEntries = 256
	planCacheMaxText = 16 << 10
)

// plan is what the gate and the first prepare found for a statement.
type plan struct {
	names []string
	types []duckdb.Type
}

// plans is the cache of plans of the views' current generation.
type plans struct {
	mu   sync.Mutex
	gen  uint64
	byID map[string]plan // by statement text
}

// get returns the plan of text under generation gen, if kept.
func (p *plans) get(gen uint64, text string) (plan, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gen != gen {
		return plan{}, false
	}
	pl, ok := p.byID[text]
	return pl, ok
}

// put keeps the plan of text under generation gen, dropping every plan of
// another generation.
func (p *plans) put(gen uint64, text string, pl plan) {
	if len(text) > planCacheMaxText {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gen != gen || p.byID == nil || len(p.byID) >= planCacheEntries {
		p.gen, p.byID = gen, make(map[string]plan)
	}
	p.byID[text] = pl
}
