package prompts

import (
	"encoding/json"
	"fmt"
	"io/fs"
)

// manifestFile is manifest.json: which text each committed audio file was
// generated from, and the version it carries. It is written by Generate and
// read by the tests that keep catalog.yaml and the audio in step.
type manifestFile struct {
	Prompts []manifestEntry `json:"prompts"`
}

type manifestEntry struct {
	Lang       Lang   `json:"lang"`
	ID         ID     `json:"id"`
	Version    string `json:"version"`     // pcmVersion of the audio
	TextSHA256 string `json:"text_sha256"` // source.textHash it was made from
	DurationMS int64  `json:"duration_ms"`
}

func readManifest(fsys fs.FS) (*manifestFile, error) {
	b, err := fs.ReadFile(fsys, "manifest.json")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCatalog, err)
	}
	var m manifestFile
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: manifest.json: %w", ErrCatalog, err)
	}
	return &m, nil
}

func (m *manifestFile) marshal() ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
