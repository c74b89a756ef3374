package server

import (
	"net/http"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"pinpipe/pin"
)

// hasRole reports whether this instance runs any of roles; with no Roles
// set it runs every one.
func (s *Server) hasRole(roles ...string) bool {
	if len(s.Roles) == 0 {
		return true
	}
	for _, r := range roles {
		if slices.Contains(s.Roles, r) {
			return true
		}
	}
	return false
}

// needs wraps h so that an instance running none of roles answers 503
// with a problem naming them and this instance's roles, so a caller (or
// the dashboard) can tell a missing role from a failing dependency.
func (s *Server) needs(h http.HandlerFunc, roles ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.hasRole(roles...) {
			s.writeError(w, r, pin.Errorf(pin.EUNAVAILABLE,
				"This pinpipe instance does not run the %s role (its PINPIPE_ROLES is %s); send this request to an instance that does.",
				strings.Join(roles, " or "), strings.Join(s.Roles, ",")))
			return
		}
		h(w, r)
	}
}

// registerRoles exports the gauge pinpipe_roles{role} = 1 for each role
// this instance runs.
func (s *Server) registerRoles(reg prometheus.Registerer) {
	if reg == nil || len(s.Roles) == 0 {
		return
	}
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "pinpipe_roles", Help: "The roles this instance runs (PINPIPE_ROLES): 1 per role.",
	}, []string{"role"})
	for _, r := range s.Roles {
		g.WithLabelValues(r).Set(1)
	}
	reg.MustRegister(g)
}

// Drain makes /readyz answer 503 ("shutting down") while every other
// route keeps serving, and asks clients to close their connections after
// each answer, so a load balancer moves traffic to other instances before
// this one stops accepting. It cannot be undone.
func (s *Server) Drain() { s.draining.Store(true) }
