// Package urlpath owns the one rule corral applies wherever a URL prefix
// is mounted (static directories, the app's SCRIPT_NAME): a path is under
// a prefix only on a segment boundary, so /app covers /app and /app/x but
// not /apple.
package urlpath

import "strings"

// Below returns the part of path after prefix and whether path is under
// prefix (equal to it, or followed by a slash).
func Below(path, prefix string) (string, bool) {
	rest, ok := strings.CutPrefix(path, prefix)
	if !ok || (rest != "" && rest[0] != '/') {
		return "", false
	}
	return rest, true
}
