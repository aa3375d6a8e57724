// Package python carries corral's Python worker runtime inside the binary:
// the bootstrap passed to `python -c`, and the corral package, which
// travels to each worker in its BOOT frame (docs/PROTOCOL.md) so nothing
// is written to disk.
package python

import (
	"archive/zip"
	"bytes"
	"embed"
	"io/fs"
	"sync"
)

// Bootstrap is the source of boot.py.
//
//go:embed boot.py
var Bootstrap string

//go:embed corral/*.py
var pkg embed.FS

// Runtime returns a zip archive of the corral package.
var Runtime = sync.OnceValues(func() ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	err := fs.WalkDir(pkg, "corral", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		src, err := pkg.ReadFile(path)
		if err != nil {
			return err
		}
		w, err := zw.Create(path)
		if err != nil {
			return err
		}
		_, err = w.Write(src)
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
})
