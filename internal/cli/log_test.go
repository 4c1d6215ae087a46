package cli

import (
	"log/slog"
)

func newTestLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
