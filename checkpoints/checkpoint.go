package checkpoints

import (
	"time"
)

// Status is the verdict on one checkpoint.
type Status string

// The verdicts. Only a complete checkpoint may be resumed from; an in-progress one is
// never judged further nor touched.
const (
	StatusComplete   Status = "complete"
	StatusIncomplete Status = "incomplete"
	StatusInProgress Status = "in-progress"
)

// Layout names, the value of Checkpoint.Layout.
const (
	LayoutHF        = "hf"
	LayoutLightning = "lightning"
	LayoutDeepSpeed = "deepspeed"
	LayoutDCP       = "dcp"
	LayoutMegatron  = "megatron"
	LayoutGeneric   = "generic"
)

// DefaultQuietPeriod is how long every file of a checkpoint must have been left alone
// before it is judged: long enough for a writer between two files, short enough not to
// delay a restart. On NFS use more than the attribute cache timeout (60 s by default).
const DefaultQuietPeriod = 3 * time.Second

// Checkpoint is one checkpoint found under a root: a directory or a single file.
type Checkpoint struct {
	// Path is the checkpoint's absolute path.
	Path string `json:"path"`
	// Name is Path relative to the root, with forward slashes.
	Name string `json:"name"`
	// Layout is the framework layout it was recognised as (LayoutHF, ...).
	Layout string `json:"layout"`
	// Step is the training step (or iteration) from its name; -1 when the name has
	// none, as for a copied Lightning last.ckpt.
	Step int64 `json:"step"`
	// Status is the verdict, and Reason says why when it is not complete.
	Status Status `json:"status"`
	Reason string `json:"reason,omitempty"`
	// Size is the total size of its regular files in bytes, Files their count.
	Size  int64 `json:"size"`
	Files int   `json:"files"`
	// ModTime is the newest mtime among its files.
	ModTime time.Time `json:"mod_time"`
	// Best is set when the framework's own records name it the best checkpoint.
	Best bool `json:"best"`
	// Pinned is set when a pointer (DeepSpeed latest, Lightning last.ckpt, Megatron's
	// tracker) names it, or it cannot be ordered by step; pruning never removes it.
	Pinned bool `json:"pinned"`
}

// String is the one-line verdict: "complete", "incomplete: <reason>" or
// "in-progress: <reason>".
func (c Checkpoint) String() string {
	if c.Reason == "" {
		return string(c.Status)
	}
	return string(c.Status) + ": " + c.Reason
}

// ScanOptions tunes Scan. The zero value is the safe default.
type ScanOptions struct {
	// QuietPeriod is how long every file must have been unchanged (mtime and ctime)
	// for its checkpoint to be judged; zero means DefaultQuietPeriod, negative none.
	QuietPeriod time.Duration
	// IgnoreOpenFiles skips the /proc scan for live processes holding files open.
	IgnoreOpenFiles bool
	// ManifestDir, when set, holds manifests written by Hash; a complete checkpoint
	// whose files no longer match them is reported incomplete (corrupt). Files whose
	// stat key is unchanged are not read again unless Full is set.
	ManifestDir string
	// Full re-reads every file with a manifest, to find bit rot that leaves the stat
	// key unchanged.
	Full bool
	// IgnoreDevice leaves the device number out of the stat key (NFS remounts).
	IgnoreDevice bool
	// racy overrides the racily-clean window of the manifest check, for tests.
	racy time.Duration
	// trustOnly uses the manifests in ManifestDir only to judge unchanged checkpoints
	// without opening them, leaving the comparison to the caller (Hash, Maintain),
	// which hashes anyway.
	trustOnly bool
	// Now is the time the quiet period is measured from; zero means time.Now().
	Now time.Time
}

func (o ScanOptions) quiet() time.Duration {
	switch {
	case o.QuietPeriod == 0:
		return DefaultQuietPeriod
	case o.QuietPeriod < 0:
		return 0
	}
	return o.QuietPeriod
}

func (o ScanOptions) now() time.Time {
	if o.Now.IsZero() {
		return time.Now()
	}
	return o.Now
}
