package pin

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

func TestSpecial8FindsEveryByteThatInterruptsAPlainRun(t *testing.T) {
	special := func(c byte) bool { return c < 0x20 || c == '"' || c == '\\' || c >= 0x80 }
	check := func(w [8]byte) {
		want := false
		for _, c := range w {
			want = want || special(c)
		}
		if got := special8(binary.LittleEndian.Uint64(w[:])); got != want {
			t.Fatalf("special8(%q) = %v, want %v", w[:], got, want)
		}
	}
	for c := range 256 {
		for pos := range 8 {
			w := [8]byte{'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a'}
			w[pos] = byte(c)
			check(w)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		var w [8]byte
		for i := range w {
			w[i] = byte(0x1e + r.IntN(0x64)) // around the thresholds
		}
		check(w)
	}
}
