package store

import (
	"os"
	"testing"

	"github.com/livedict/livedict/pkg/store/redistest"
)

// TestMain gives the package's Redis tests one real server for the run.
func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }
