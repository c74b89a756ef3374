package query

import (
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"pinpipe/lake"
	"pinpipe/lake/layout"
)

// mirrorZones are the zones the mirror copies; the rejected zone is not
// queryable.
var mirrorZones = []layout.Zone{layout.Curated, layout.Raw}

// object is one lake object the mirror should hold locally.
type object struct {
	Key  string // curated/dt=2026-11-24/part-<run>-0000.parquet
	ETag string
	Size int64
	Zone layout.Zone // curated or raw
	DT   string      // 2026-11-24
	Run  string      // a curated part's run ID; "" for other objects
	// Whole is true for a day's curated object (layout.CuratedDay), which
	// holds the day by itself.
	Whole bool
	Rel   string // its local path under the mirror directory, slash-separated
	// Landed is true for a raw object named as the landing names it
	// (layout.RawPart): the objects the batch job reads, and so the ones
	// pins_live cleans.
	Landed bool
	// Modified is the object's LastModified in the listing; zero for a copy
	// found on disk at start.
	Modified time.Time
}

// day names a zone's day partition: "curated/dt=2026-11-24/".
func (o object) day() string { return o.Zone.DayPrefix(o.DT) }

// parseObject reads a lake key of the form <zone>/dt=<day>/<name>.parquet
// in a zone the mirror copies, whoever wrote it. Returns ok=false for any
// other key (markers, temporary objects, deeper paths, names that could
// escape the mirror directory or hold the '~' of its local names).
func parseObject(o lake.Object) (object, bool) {
	k, ok := layout.Parse(o.Key)
	if !ok || (k.Zone != layout.Curated && k.Zone != layout.Raw) {
		return object{}, false
	}
	stem, ok := strings.CutSuffix(k.Name, ".parquet")
	if !ok || stem == "" || strings.HasPrefix(k.Name, ".") || strings.ContainsAny(k.Name, "~\\\x00") {
		return object{}, false
	}
	etag := cleanETag(o)
	obj := object{
		Key: o.Key, ETag: etag, Size: o.Size, Zone: k.Zone, DT: k.DT,
		Rel:    k.Zone.DayPrefix(k.DT) + stem + "~" + etag + ".parquet",
		Landed: k.Kind == layout.RawPart, Modified: o.LastModified,
	}
	if k.Kind == layout.CuratedPart {
		obj.Run = k.Run
	}
	obj.Whole = k.Kind == layout.CuratedDay
	return obj, true
}

// parseLocal reads a local mirror path made by parseObject, or by
// object.cleaned, back into the object's key and ETag. Returns ok=false for
// any other path.
func parseLocal(rel string, size int64) (object, bool) {
	if rest, ok := strings.CutPrefix(rel, liveZone.Prefix()); ok {
		o, ok := parseLocal(layout.Raw.Prefix()+rest, size)
		if !ok || !o.Landed {
			return object{}, false
		}
		return o.cleaned(size), true
	}
	dir, name := path.Split(rel)
	stem, ok := strings.CutSuffix(name, ".parquet")
	if !ok {
		return object{}, false
	}
	i := strings.LastIndexByte(stem, '~')
	if i <= 0 || i == len(stem)-1 {
		return object{}, false
	}
	o, ok := parseObject(lake.Object{Key: dir + stem[:i] + ".parquet", ETag: stem[i+1:], Size: size})
	if !ok || o.Rel != rel {
		return object{}, false
	}
	return o, true
}

// cleanETag returns the object's ETag reduced to letters, digits and '-'
// (a multipart ETag is "<md5>-<parts>"), so it can be part of a file name.
// An object without one is named by its size and modification time.
func cleanETag(o lake.Object) string {
	var b strings.Builder
	for _, r := range o.ETag {
		if r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			b.WriteRune(r)
		}
		if b.Len() >= 64 {
			break
		}
	}
	if b.Len() == 0 {
		return "s" + strconv.FormatInt(o.Size, 10) + "t" + strconv.FormatInt(o.LastModified.UnixNano(), 10)
	}
	return b.String()
}

// validDay reports whether dt is a day as the lake writes it (YYYY-MM-DD).
func validDay(dt string) bool { return layout.ValidDay(dt) }

// choose returns the objects a query should see, from one listing of each
// zone: every raw object, and for each curated day one run's rows. A day
// with its curated object (layout.CuratedDayKey) is that object alone: each
// run replaces it whole, and parts beside it are the old layout's, left
// only while the run that replaced them removes them. A day kept as parts
// (the old layout) is read from the newest run with a commit marker (the
// batch job wrote it after all of the run's parts), so a day being
// rewritten is read as the last complete run. A day with no marker at all
// (objects put there by another writer) is read from its newest run by
// name (run ids sort by time); a day none of whose names carries a run id
// is taken whole. Keys that are not <zone>/dt=<day>/<name>.parquet are left
// out.
func choose(listing []lake.Object) []object {
	var out []object
	newest := map[string]string{}    // curated day → newest run id by name
	committed := map[string]string{} // curated day → newest committed run id
	whole := map[string]bool{}       // curated day → has its day object
	for _, lo := range listing {
		if k, ok := layout.Parse(lo.Key); ok && k.Kind == layout.Commit {
			if k.Run > committed[k.DT] {
				committed[k.DT] = k.Run
			}
			continue
		}
		o, ok := parseObject(lo)
		if ok && o.Run != "" && o.Run > newest[o.DT] {
			newest[o.DT] = o.Run
		}
		if ok && o.Whole {
			whole[o.DT] = true
		}
	}
	for dt, run := range committed {
		newest[dt] = run
	}
	seen := map[string]bool{}
	for _, lo := range listing {
		o, ok := parseObject(lo)
		if !ok || seen[o.Key] {
			continue
		}
		switch {
		case o.Zone != layout.Curated:
		case whole[o.DT]:
			if !o.Whole {
				continue
			}
		case newest[o.DT] != "" && o.Run != newest[o.DT]:
			continue
		}
		seen[o.Key] = true
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// withinBudget keeps whole days of objs, most recently used first (a day
// never used counts from when it was first seen; ties go to the later
// date), until the next day would take the total past maxBytes. A raw day
// in live counts twice its size: its objects also get cleaned copies, about
// as large. Returns the objects kept and the dates (YYYY-MM-DD) of the days
// left out.
func withinBudget(objs []object, maxBytes int64, used map[string]time.Time, live map[string]bool) (kept []object, left map[string]bool) {
	type dayInfo struct {
		name, dt string
		size     int64
		objs     []object
	}
	byDay := map[string]*dayInfo{}
	var days []*dayInfo
	for _, o := range objs {
		d := byDay[o.day()]
		if d == nil {
			d = &dayInfo{name: o.day(), dt: o.DT}
			byDay[o.day()] = d
			days = append(days, d)
		}
		d.size += o.Size
		if o.Landed && live[o.DT] {
			d.size += o.Size
		}
		d.objs = append(d.objs, o)
	}
	sort.SliceStable(days, func(i, j int) bool {
		a, b := days[i], days[j]
		if ua, ub := used[a.dt], used[b.dt]; !ua.Equal(ub) {
			return ua.After(ub)
		}
		if a.dt != b.dt {
			return a.dt > b.dt
		}
		return a.name < b.name // curated before raw
	})
	left = map[string]bool{}
	var total int64
	for _, d := range days {
		if total+d.size > maxBytes {
			left[d.dt] = true
			continue
		}
		total += d.size
		kept = append(kept, d.objs...)
	}
	sort.Slice(kept, func(i, j int) bool { return kept[i].Key < kept[j].Key })
	return kept, left
}
