package checkpoints

import (
	"context"
	"fmt"
	"strings"
)

// trusted reports whether c has a manifest (written only for a checkpoint that was
// complete) listing exactly its files with unchanged stat keys, old enough not to be
// racily clean and from this boot. Such a checkpoint is complete without reading a
// byte, so re-verifying an unchanged checkpoint costs stat calls only. Full never
// trusts.
func (o ScanOptions) trusted(c *candidate) bool {
	if o.ManifestDir == "" || o.Full {
		return false
	}
	m := readManifest(o.ManifestDir, c.Name)
	if m == nil || len(m.Files) != len(c.files) || m.BootID != bootID() {
		return false
	}
	window := o.racy
	if window <= 0 {
		window = racyWindow
	}
	prefix := manifestPrefix(c)
	by := make(map[string]ManifestFile, len(m.Files))
	for _, f := range m.Files {
		by[f.Path] = f
	}
	for _, f := range c.files {
		mf, ok := by[prefix+f.rel]
		changed := f.mtime
		if f.ctime.After(changed) {
			changed = f.ctime
		}
		if !ok || !sameKey(manifestKey(mf), fileKey(f), o.IgnoreDevice) || !changed.Before(m.HashedAt.Add(-window)) {
			return false
		}
	}
	return true
}

// compareManifests checks every complete checkpoint that has a manifest against it,
// reading only files whose stat key changed (or all, with opt.Full). A mismatch makes
// the checkpoint incomplete with the reason. Scan writes nothing: Hash does.
func (r *scanResult) compareManifests(ctx context.Context, opt ScanOptions) error {
	boot := bootID()
	for _, c := range r.cands {
		if c.Status != StatusComplete {
			continue
		}
		old := readManifest(opt.ManifestDir, c.Name)
		if old == nil {
			continue
		}
		_, res, err := hashCandidate(ctx, c, r.root, old, boot, HashOptions{Full: opt.Full, IgnoreDevice: opt.IgnoreDevice, racy: opt.racy})
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
	sopt.ManifestDir = "" // compared below, once, while hashing
	res, err := scan(ctx, root, sopt)
	if err != nil {
		return nil, nil, err
	}
	results, err := res.hashAll(ctx, manifestDir, hopt)
	return res.list(), results, err
}

// hashAll hashes every complete checkpoint, writes manifests, and marks mismatching
// checkpoints incomplete.
func (r *scanResult) hashAll(ctx context.Context, manifestDir string, opt HashOptions) ([]HashResult, error) {
	boot := bootID()
	var out []HashResult
	for _, c := range r.cands {
		if c.Status != StatusComplete {
			continue
		}
		old := readManifest(manifestDir, c.Name)
		m, res, err := hashCandidate(ctx, c, r.root, old, boot, opt)
		if err != nil {
			if ctx.Err() != nil {
				return out, err
			}
			c.Status, c.Reason = StatusIncomplete, err.Error()
			continue
		}
		out = append(out, res)
		if len(res.Mismatch) > 0 {
			c.Status, c.Reason = StatusIncomplete, "corrupt: "+strings.Join(res.Mismatch, "; ")
			continue
		}
		if err := writeManifest(manifestDir, m); err != nil {
			return out, err
		}
	}
	return out, nil
}
