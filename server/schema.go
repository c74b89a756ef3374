package server

import (
	"encoding/json"
	"fmt"
	"net/http"

	"pinpipe/pin"
)

// schemaViews are the views queries read, in the order the schema lists
// them, with what each holds.
var schemaViews = []struct{ name, about string }{
	{"pins", "cleaned pins from the curated zone, one row per pin and day (dt) the batch job ran"},
	{"pins_live", "every landed pin, cleaned: the curated zone where it is current, the raw zone cleaned on the fly elsewhere"},
	{"pins_raw", "the raw zone: each Kafka record as it was accepted, with its topic, partition, offset and timestamp"},
}

// SchemaView is one view of GET /query/schema.
type SchemaView struct {
	Name        string             `json:"name"`
	Description string             `json:"description"`
	Columns     []pin.ResultColumn `json:"columns"`
}

// handleSchema answers GET /query/schema with the views queries read and
// their columns: {"views": [{"name", "description", "columns": [{"name",
// "type"}]}]}. It asks the engine itself (DESCRIBE), through the same
// sandbox as any query, so the types are those queries see.
func (s *Server) handleSchema(w http.ResponseWriter, r *http.Request) {
	if s.Query == nil {
		s.writeError(w, r, errQueryOff)
		return
	}
	out := struct {
		Views []SchemaView `json:"views"`
	}{Views: []SchemaView{}}
	for _, v := range schemaViews {
		d := &describeResult{}
		if _, err := s.Query.Query(r.Context(), "DESCRIBE "+v.name, pin.QueryMaxLimit, d); err != nil {
			s.writeError(w, r, err)
			return
		}
		if d.err != nil {
			s.writeError(w, r, fmt.Errorf("schema: describe %s: %w", v.name, d.err))
			return
		}
		out.Views = append(out.Views, SchemaView{Name: v.name, Description: v.about, Columns: d.cols})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(out)
}

// describeResult collects the column names and types of a DESCRIBE.
type describeResult struct {
	name, typ int
	cols      []pin.ResultColumn
	err       error
}

func (d *describeResult) Columns(names, _ []string) error {
	d.name, d.typ = -1, -1
	for i, n := range names {
		switch n {
		case "column_name":
			d.name = i
		case "column_type":
			d.typ = i
		}
	}
	if d.name < 0 || d.typ < 0 {
		d.err = fmt.Errorf("DESCRIBE answered the columns %v", names)
	}
	d.cols = []pin.ResultColumn{}
	return d.err
}

func (d *describeResult) Row(values []any) error {
	name, _ := values[d.name].(string)
	typ, _ := values[d.typ].(string)
	d.cols = append(d.cols, pin.ResultColumn{Name: name, Type: typ})
	return nil
}
