package preflight

import (
	"fmt"

	"github.com/trainwrap/trainwrap/checkpoints"
)

// Byte units, decimal as disks are sold and as the seed's thresholds were written.
const (
	KB uint64 = 1000
	MB        = 1000 * KB
	GB        = 1000 * MB
	TB        = 1000 * GB
)

// ByteSize is a size flag: "50GB", "512MiB", "1.5TB" or a plain number of bytes.
// It implements encoding.TextUnmarshaler so that kong and JSON configs can set it.
type ByteSize uint64

// ParseBytes reads a size such as "50GB", "4 GiB", "1.5T" or "1073741824", with the
// same units as every other size trainwrap takes (checkpoints.ParseSize).
func ParseBytes(s string) (uint64, error) { return checkpoints.ParseSize(s) }

// UnmarshalText parses a size flag.
func (b *ByteSize) UnmarshalText(text []byte) error {
	v, err := ParseBytes(string(text))
	if err != nil {
		return err
	}
	*b = ByteSize(v)
	return nil
}

// String formats the size for people, in decimal units.
func (b ByteSize) String() string { return formatBytes(uint64(b)) }

// formatBytes prints n with one decimal in the largest decimal unit below it.
func formatBytes(n uint64) string {
	switch {
	case n >= TB:
		return fmt.Sprintf("%.1f TB", float64(n)/float64(TB))
	case n >= GB:
		return fmt.Sprintf("%.1f GB", float64(n)/float64(GB))
	case n >= MB:
		return fmt.Sprintf("%.1f MB", float64(n)/float64(MB))
	case n >= KB:
		return fmt.Sprintf("%.1f kB", float64(n)/float64(KB))
	}
	return fmt.Sprintf("%d B", n)
}
