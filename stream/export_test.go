package stream

// SetCheckpointWAL sets the write-ahead log's size past which a write of
// the embedded stand-in is followed by a checkpoint, until the returned
// function puts it back.
func SetCheckpointWAL(n int64) (restore func()) {
	old := checkpointWAL
	checkpointWAL = n
	return func() { checkpointWAL = old }
}
