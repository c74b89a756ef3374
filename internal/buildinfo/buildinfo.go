// Package buildinfo tells which pinpipe this is: the module version, the
// VCS commit and its time, read once from the binary's build information.
package buildinfo

import (
	"runtime"
	"runtime/debug"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Info is what the binary knows about its own build.
type Info struct {
	Version  string // module version, "(devel)" for a build from a work tree
	Commit   string // VCS revision, "unknown" when built without VCS stamping
	Time     string // commit time (RFC 3339), "unknown" when not stamped
	Modified bool   // the work tree had uncommitted changes
	Go       string // Go version that built it
}

var get = sync.OnceValue(func() Info {
	i := Info{Version: "(devel)", Commit: "unknown", Time: "unknown", Go: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return i
	}
	if v := bi.Main.Version; v != "" {
		i.Version = v
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			i.Commit = s.Value
		case "vcs.time":
			i.Time = s.Value
		case "vcs.modified":
			i.Modified = s.Value == "true"
		}
	}
	return i
})

// Get returns the build information; fields the build did not stamp hold
// "unknown" (or "(devel)" for the version).
func Get() Info { return get() }

// ShortCommit returns the first 12 characters of the commit, with
// "-dirty" when the work tree was modified; "unknown" when not stamped.
func (i Info) ShortCommit() string {
	c := i.Commit
	if len(c) > 12 {
		c = c[:12]
	}
	if i.Modified {
		c += "-dirty"
	}
	return c
}

// Register adds the gauge pinpipe_build_info{version,commit,go} = 1 to reg.
func Register(reg prometheus.Registerer) error {
	i := Get()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "pinpipe_build_info",
		Help:        "Always 1; the labels say which pinpipe build is running.",
		ConstLabels: prometheus.Labels{"version": i.Version, "commit": i.ShortCommit(), "go": i.Go},
	})
	g.Set(1)
	return reg.Register(g)
}
