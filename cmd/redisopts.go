package cmd

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"github.com/livedict/livedict/pkg/readfile"
	"github.com/livedict/livedict/pkg/store"
)

// maxPasswordFile bounds redis_password_file: a Redis password is a line.
const maxPasswordFile = 64 << 10

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
		b, err := readfile.Private(p, maxPasswordFile)
		if errors.Is(err, readfile.ErrNotPrivate) {
			return ro, storeErr(fmt.Errorf("%w: redis_password_file %s: %w", store.ErrUntrusted, p, err))
		}
		if err != nil {
			return ro, storeErr(store.WithKind(store.KindStore, fmt.Errorf("redis_password_file %s: %w", p, unwrapPathErr(err))))
		}
		ro.Password = string(bytes.TrimRight(b, "\r\n"))
		if ro.Password == "" {
			// Not a fall back to the URL's or the environment's
			// password, which the user meant this file to replace.
			return ro, storeErr(store.WithKind(store.KindStore, fmt.Errorf("redis_password_file %s: is empty", p)))
		}
	}
	if ro.Password == "" {
		// The URL's password, passed on by the livedict that started
		// this one (spawnStore); a password file still comes first.
		ro.Password = spawnedPassword
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
