package stream

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"pinpipe/internal/testenv"
)

// TestPostgresSinkCommitsDurablyWhateverTheServerDefault opens the sink on
// a database whose default is synchronous_commit = off (the stack's test
// Postgres has it off for the whole server): the sink's sessions still
// commit durably, since it commits a batch's Kafka offsets once Postgres
// acknowledged the batch. The chaos soak (seed 1, Postgres killed) lost a
// pin whose acknowledged commit the killed server had not yet written.
func TestPostgresSinkCommitsDurablyWhateverTheServerDefault(t *testing.T) {
	u := testenv.Postgres(t)
	if u == "" {
		t.Skip("needs a real Postgres (scripts/stack up)")
	}
	ctx := context.Background()
	parsed, err := url.Parse(u)
	testenv.Must(t, err)
	db := strings.TrimPrefix(parsed.Path, "/")
	conn, err := pgx.Connect(ctx, u)
	testenv.Must(t, err)
	_, err = conn.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{db}.Sanitize()+" SET synchronous_commit = off")
	testenv.Must(t, conn.Close(ctx))
	testenv.Must(t, err)

	s, err := OpenPostgres(ctx, u, testenv.Log(t))
	testenv.Must(t, err)
	defer s.Close()
	var got string
	testenv.Must(t, s.pool.QueryRow(ctx, "SHOW synchronous_commit").Scan(&got))
	if got != "on" {
		t.Fatalf("the sink's sessions run with synchronous_commit = %s, want on", got)
	}
}
