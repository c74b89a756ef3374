package query

import "sync"

// pool holds the engine's DuckDB connections. The connection used last is
// handed out first: its caches are warm, which a round robin over all of
// them would spoil for every query.
type pool struct {
	mu   sync.Mutex
	cond *sync.Cond
	idle []*conn
	size int
}

func newPool() *pool {
	p := &pool{}
	p.cond = sync.NewCond(&p.mu)
	return p
}

// add puts a new connection in the pool.
func (p *pool) add(c *conn) {
	p.mu.Lock()
	p.idle = append(p.idle, c)
	p.size++
	p.mu.Unlock()
}

// get returns an idle connection, or nil when all are in use.
func (p *pool) get() *conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.idle) == 0 {
		return nil
	}
	c := p.idle[len(p.idle)-1]
	p.idle = p.idle[:len(p.idle)-1]
	return c
}

// put returns a connection that get handed out.
func (p *pool) put(c *conn) {
	p.mu.Lock()
	p.idle = append(p.idle, c)
	p.mu.Unlock()
	p.cond.Broadcast()
}

// drain waits until every connection is idle and returns them all; the
// pool is then empty.
func (p *pool) drain() []*conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.idle) < p.size {
		p.cond.Wait()
	}
	all := p.idle
	p.idle, p.size = nil, 0
	return all
}
