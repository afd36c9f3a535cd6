package trunk_test

import (
	"os"
	"testing"

	"github.com/hotline12345/hotline/internal/redistest"
)

// TestMain shares a Redis Sentinel set and a Cluster among the tests
// that run on every deployment.
func TestMain(m *testing.M) { os.Exit(redistest.RunTests(m)) }
