package main

import (
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/livedict/livedict/pkg/store/redistest"
)

// TestScriptsRedis runs the scripts of testdata/redis against a real
// redis-server: $REDIS is a store URL with a key prefix of the script's
// own, so the scripts run in parallel on one server.
func TestScriptsRedis(t *testing.T) {
	base := redistest.Start(t, "--save", "", "--appendonly", "no")
	p := scriptParams("testdata/redis")
	setup := p.Setup
	p.Setup = func(e *testscript.Env) error {
		if err := setup(e); err != nil {
			return err
		}
		b := make([]byte, 8)
		if _, err := rand.Read(b); err != nil {
			return err
		}
		u, err := url.Parse(base)
		if err != nil {
			return err
		}
		u.RawQuery = "prefix=s" + hex.EncodeToString(b)
		e.Setenv("REDIS", u.String())
		e.Setenv("LIVEDICT_REDIS_PASSWORD", "")
		return nil
	}
	testscript.Run(t, p)
}
