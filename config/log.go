package config

import (
	"io"
	"log/slog"
)

// Log formats (PINPIPE_LOG_FORMAT).
const (
	LogText = "text" // key=value lines, for people
	LogJSON = "json" // one JSON object per line, for log collectors
)

// NewLogger returns a logger writing to w in format (LogText or LogJSON;
// anything else means LogText) at level (debug, info, warn or error;
// anything else means info).
func NewLogger(w io.Writer, level, format string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	o := &slog.HandlerOptions{Level: l}
	if format == LogJSON {
		return slog.New(slog.NewJSONHandler(w, o))
	}
	return slog.New(slog.NewTextHandler(w, o))
}
