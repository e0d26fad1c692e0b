package sdk

import "fmt"

// Level is a log level; the host maps it to its own logger.
type Level uint32

// The log levels.
const (
	LevelTrace Level = 1
	LevelDebug Level = 2
	LevelInfo  Level = 3
	LevelWarn  Level = 4
	LevelError Level = 5
)

// Log sends a line to the host's log, under the plugin's name. The host truncates long lines and rate-limits
// floods; never log personal data (emails, phone numbers) at info or above.
func Log(level Level, format string, args ...any) {
	logLine(level, fmt.Sprintf(format, args...))
}
