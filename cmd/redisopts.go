package cmd

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"github.com/livedict/livedict/pkg/readfile"
	"github.com/livedict/livedict/pkg/store"
)

// redisOptions reads the Redis settings: the password file and the CA
// file are read only for a Redis store. A password file others may read
// is refused, as ssh refuses such a key: the password would not be a
// secret.
func (a *App) redisOptions() (store.RedisOptions, error) {
	ro := store.RedisOptions{ConnectTimeout: a.Config.ConnectTimeout}
	u := a.Config.Store
	if !strings.HasPrefix(u, "redis://") && !strings.HasPrefix(u, "rediss://") && !strings.HasPrefix(u, "unix://") {
		return ro, nil
	}
	if p := a.Config.RedisPasswordFile; p != "" {
		fi, err := os.Stat(p)
		if err != nil {
			return ro, storeErr(store.WithKind(store.KindStore, fmt.Errorf("redis_password_file %s: %w", p, unwrapPathErr(err))))
		}
		if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o077 != 0 {
			return ro, storeErr(fmt.Errorf("%w: redis_password_file %s: must be a regular file only its owner can read (chmod 600)", store.ErrUntrusted, p))
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return ro, storeErr(store.WithKind(store.KindStore, fmt.Errorf("redis_password_file %s: %w", p, unwrapPathErr(err))))
		}
		ro.Password = string(bytes.TrimRight(b, "\r\n"))
	}
	// The CA file is for TLS: a plain redis:// or unix:// store does not
	// read it (a config file may name it for another store).
	if p := a.Config.RedisCAFile; p != "" && strings.HasPrefix(u, "rediss://") {
		// Bounded (not /dev/zero read forever), and ours: a CA another user
		// added would let them pose as the server.
		pem, err := readfile.Owned(p, maxConfigFile)
		if err != nil {
			return ro, storeErr(store.WithKind(store.KindStore, fmt.Errorf("redis_ca_file %s: %w", p, unwrapPathErr(err))))
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return ro, storeErr(store.WithKind(store.KindStore, fmt.Errorf("redis_ca_file %s: no PEM certificate in it", p)))
		}
		ro.TLSConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return ro, nil
}
