package pin

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestSchemaIsCleanedFieldByField holds Schema to Cleaned: one entry per
// field, in field order, named as the field's json and parquet tags, nullable
// exactly when the field is a pointer, and its accessors reaching that field.
func TestSchemaIsCleanedFieldByField(t *testing.T) {
	typ := reflect.TypeFor[Cleaned]()
	if typ.NumField() != len(Schema) {
		t.Fatalf("Cleaned has %d fields, Schema %d columns", typ.NumField(), len(Schema))
	}
	var c Cleaned
	v := reflect.ValueOf(&c).Elem()
	for i, col := range Schema {
		f := typ.Field(i)
		if json := f.Tag.Get("json"); json != col.Name {
			t.Errorf("column %d is %s, Cleaned.%s's json name %s", i, col.Name, f.Name, json)
		}
		if pq, _, _ := strings.Cut(f.Tag.Get("parquet"), ","); pq != col.Name {
			t.Errorf("column %d is %s, Cleaned.%s's parquet name %s", i, col.Name, f.Name, pq)
		}
		if nullable := f.Type.Kind() == reflect.Pointer; nullable != col.Nullable {
			t.Errorf("column %s: Nullable %v, but Cleaned.%s is %s", col.Name, col.Nullable, f.Name, f.Type)
		}
		if got, want := col.Field(&c), v.Field(i).Addr().Interface(); got != want {
			t.Errorf("column %s: Field points at %T %p, not Cleaned.%s at %p", col.Name, got, got, f.Name, want)
		}
		if Columns[i] != col.Name {
			t.Errorf("Columns[%d] is %s, Schema's %s", i, Columns[i], col.Name)
		}
	}
}

func TestValuesArePlainWithNilForNull(t *testing.T) {
	title, followers := "Sunset", int64(26000)
	c := Clean(Pin{Index: 7, UniqueID: "ABC", Category: " art ", Title: &title, FollowerCount: new(string)},
		Lineage{IngestedAt: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC), Partition: 2, Offset: 9})
	c.FollowerCount = &followers
	vals := c.Values()
	if len(vals) != len(Schema) {
		t.Fatalf("Values has %d values for %d columns", len(vals), len(Schema))
	}
	for i, col := range Schema {
		want := reflect.ValueOf(c).Field(i)
		if want.Kind() == reflect.Pointer {
			if want.IsNil() {
				want = reflect.ValueOf(nil)
			} else {
				want = want.Elem()
			}
		}
		if !want.IsValid() && vals[i] != nil || want.IsValid() && !reflect.DeepEqual(vals[i], want.Interface()) {
			t.Errorf("Values()[%d] (%s) = %#v, want the field's value or nil", i, col.Name, vals[i])
		}
	}
	if vals[1] != "Sunset" || vals[4] != nil || vals[6] != int64(26000) || !reflect.DeepEqual(vals[8], []string{}) {
		t.Errorf("Values: title %#v, description %#v, follower_count %#v, tags %#v", vals[1], vals[4], vals[6], vals[8])
	}
	var back Cleaned
	for i, f := range back.Fields() {
		reflect.ValueOf(f).Elem().Set(reflect.ValueOf(c.Fields()[i]).Elem())
	}
	if !reflect.DeepEqual(back, c) {
		t.Fatalf("copying through Fields: got %+v, want %+v", back, c)
	}
}

func TestColumnListPrefixesEachName(t *testing.T) {
	if got := ColumnList("p.", Schema[:3]); got != "p.id_index, p.title, p.category" {
		t.Fatalf("ColumnList: %q", got)
	}
}
