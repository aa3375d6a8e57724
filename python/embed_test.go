package python

import (
	"archive/zip"
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestRuntimeHoldsEveryModule: the zip sent in BOOT holds every .py file
// of the corral package on disk, byte for byte, so that a new module (or a
// subpackage the go:embed pattern does not reach) cannot be left out.
func TestRuntimeHoldsEveryModule(t *testing.T) {
	var want []string
	err := filepath.WalkDir("corral", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "__pycache__" {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".py") {
			want = append(want, filepath.ToSlash(path))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Runtime()
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range zr.File {
		got = append(got, f.Name)
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		_, err = buf.ReadFrom(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		disk, err := os.ReadFile(filepath.FromSlash(f.Name))
		if err != nil {
			t.Errorf("%s is in the runtime but not on disk: %v", f.Name, err)
			continue
		}
		if !bytes.Equal(buf.Bytes(), disk) {
			t.Errorf("%s differs from the file on disk", f.Name)
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("runtime zip holds %q\nwant %q", got, want)
	}
}
