package checkpoints

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// trusted reports whether c has a manifest (written only for a checkpoint that was
// complete) listing exactly its files with unchanged stat keys, old enough not to be
// racily clean and from this boot. Such a checkpoint is complete without reading a
// byte, so re-verifying an unchanged checkpoint costs stat calls only. Full never
// trusts.
func (o ScanOptions) trusted(c *candidate, boot string) bool {
	if o.ManifestDir == "" || o.Full {
		return false
	}
	m := c.manifest(o.ManifestDir)
	if m == nil || len(m.Files) != len(c.files) || m.BootID != boot {
		return false
	}
	window := o.racy
	if window <= 0 {
		window = racyWindow
	}
	prefix := manifestPrefix(c)
	// The manifest lists the files in the order collect found them (WalkDir's
	// lexical order), so the common case is a walk in step; the map is built only
	// when the order differs.
	var by map[string]ManifestFile
	for i, f := range c.files {
		mf := m.Files[i]
		if mf.Path != prefix+f.rel {
			if by == nil {
				by = make(map[string]ManifestFile, len(m.Files))
				for _, f := range m.Files {
					by[f.Path] = f
				}
			}
			var ok bool
			if mf, ok = by[prefix+f.rel]; !ok {
				return false
			}
		}
		if !sameKey(manifestKey(mf), fileKey(f), o.IgnoreDevice) || !f.lastChange().Before(m.HashedAt.Add(-window)) {
			return false
		}
	}
	return true
}

// compareManifests checks every complete checkpoint that has a manifest against it,
// reading only files whose stat key changed (or all, with opt.Full). A mismatch makes
// the checkpoint incomplete with the reason. Scan writes nothing: Hash does.
func (r *scanResult) compareManifests(ctx context.Context, opt ScanOptions) error {
	boot := r.boot
	bufs := newBufPool(HashOptions{}.workers())
	for _, c := range r.cands {
		if c.Status != StatusComplete {
			continue
		}
		old := c.manifest(opt.ManifestDir)
		if old == nil {
			continue
		}
		_, res, err := hashCandidate(ctx, c, r.root, old, boot, HashOptions{Full: opt.Full, IgnoreDevice: opt.IgnoreDevice, racy: opt.racy}, bufs)
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			c.Status, c.Reason = StatusIncomplete, err.Error()
			continue
		}
		r.reads += res.Read
		if len(res.Mismatch) > 0 {
			c.Status, c.Reason = StatusIncomplete, "corrupt: "+strings.Join(res.Mismatch, "; ")
		}
	}
	return nil
}

// Hash brings the manifests in manifestDir up to date for every complete checkpoint
// under root, and returns what it did per checkpoint. A checkpoint whose files no
// longer match its manifest keeps the old manifest (the evidence) and is listed with
// its mismatches; Hash returns an error only when it cannot do its job at all.
func Hash(ctx context.Context, root, manifestDir string, sopt ScanOptions, hopt HashOptions) ([]Checkpoint, []HashResult, error) {
	if manifestDir == "" {
		return nil, nil, fmt.Errorf("checkpoints: hash %s: no manifest directory given", root)
	}
	// The manifests let unchanged checkpoints be judged by stat alone; they are
	// compared below, once, while hashing.
	sopt.ManifestDir, sopt.trustOnly = manifestDir, true
	res, err := scan(ctx, root, sopt)
	if err != nil {
		return nil, nil, err
	}
	results, pending, err := res.hashAll(ctx, manifestDir, hopt)
	// Even when cancelled, what was hashed is kept.
	if werr := writeManifests(manifestDir, pending); werr != nil {
		err = errors.Join(err, werr)
	}
	return res.list(), results, err
}

// hashAll hashes every complete checkpoint, marks mismatching checkpoints
// incomplete, and returns the manifests to write: the caller writes them together
// (see writeManifests), Maintain only for the checkpoints it did not prune. A manifest
// that would say nothing new is not returned.
func (r *scanResult) hashAll(ctx context.Context, manifestDir string, opt HashOptions) ([]HashResult, []*Manifest, error) {
	boot := r.boot
	bufs := newBufPool(opt.workers())
	var out []HashResult
	var pending []*Manifest
	var err error
	for _, c := range r.cands {
		if c.Status != StatusComplete {
			continue
		}
		old := c.manifest(manifestDir)
		m, res, herr := hashCandidate(ctx, c, r.root, old, boot, opt, bufs)
		if herr != nil {
			if ctx.Err() != nil {
				err = herr
				break
			}
			c.Status, c.Reason = StatusIncomplete, herr.Error()
			continue
		}
		out = append(out, res)
		if len(res.Mismatch) > 0 {
			c.Status, c.Reason = StatusIncomplete, "corrupt: "+strings.Join(res.Mismatch, "; ")
			continue
		}
		if needsWrite(old, m, opt.racyWindow()) {
			pending = append(pending, m)
		}
	}
	return out, pending, err
}

// needsWrite reports whether the new manifest m says more than old: other files,
// keys or hashes, another boot, or files that only m's later hash time takes out of
// the racily-clean window (so that the next pass may trust them without reading).
// Rewriting an identical manifest would cost an fsync per checkpoint per pass.
func needsWrite(old, m *Manifest, window time.Duration) bool {
	if old == nil || old.BootID != m.BootID || old.Root != m.Root || len(old.Files) != len(m.Files) {
		return true
	}
	for i, f := range m.Files {
		if old.Files[i] != f {
			return true
		}
		changed := time.Unix(0, max(f.MtimeNS, f.CtimeNS))
		if !changed.Before(old.HashedAt.Add(-window)) && changed.Before(m.HashedAt.Add(-window)) {
			return true
		}
	}
	return false
}
