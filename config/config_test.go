package config

import (
	"os"
	"strings"
	"testing"
)

// The README's configuration table is written by hand; this keeps it complete.
func TestREADMEListsEverySetting(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, s := range settings {
		row := "| `" + s.env + "` | `--" + s.flag + "` | "
		if !strings.Contains(readme, row) {
			t.Errorf("README's configuration table has no row starting %q", row)
		}
	}
}
