package cmd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/livedict/livedict/pkg/hooks"
	"github.com/livedict/livedict/pkg/seal"
	"github.com/livedict/livedict/pkg/store"
	"github.com/livedict/livedict/pkg/ttl"
	"github.com/spf13/cobra"
)

func newBucketCmd(a *App) *cobra.Command {
	c := &cobra.Command{
		Use:     "bucket",
		Example: "  livedict bucket policy sessions --max-keys 10000 --default-ttl 1h\n  livedict bucket drop scratch --yes",
		Short:   "Show or set a bucket's policy, or drop a bucket",
		Args:    groupArgs, // a bare `bucket` is a usage error, not help with exit 0
		RunE:    func(cmd *cobra.Command, args []string) error { return nil },
	}
	c.AddCommand(newBucketPolicyCmd(a), newBucketDropCmd(a), newBucketRekeyCmd(a))
	return c
}

func newBucketPolicyCmd(a *App) *cobra.Command {
	var maxKeys int64
	var defaultTTL, full string
	var encrypt, noEncrypt bool
	c := &cobra.Command{
		Use:   "policy NAME [--max-keys N] [--default-ttl D] [--on-full reject|evict-soonest] [--encrypt|--no-encrypt]",
		Short: "Show or set a bucket's policy",
		Long: `Set the policy of bucket NAME; without flags, show it. Flags not given keep
their current value. --max-keys 0 and --default-ttl 0 remove the limit and the
default TTL. When a write would add a key to a full bucket, reject refuses it
(exit 4) and evict-soonest deletes the key with the nearest deadline (and
refuses, exit 4, when no key has a TTL, or when that key is a held lock:
a lease is never evicted from under its holder).

--encrypt encrypts every value of the bucket with age to this host's identity
and the keys of recipients_file (values already there are encrypted at once);
keys, TTLs and sizes stay readable. --no-encrypt turns it off for an empty
bucket; 'livedict bucket rekey NAME --decrypt' decrypts one that holds values.

Policies live in the store, so every user of the store sees the same ones.`,
		Example:           "  livedict bucket policy cache --max-keys 1000 --default-ttl 1h --on-full evict-soonest",
		Args:              args(1, 1),
		ValidArgsFunction: completeBuckets(a, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if err := store.ValidateBucket(name); err != nil {
				return usageErr(err, "")
			}
			fs := cmd.Flags()
			if fs.Changed("max-keys") && maxKeys < 0 {
				return usageErr(errors.New("--max-keys must be ≥ 0"), "")
			}
			var ttlMs int64
			if fs.Changed("default-ttl") {
				d, err := ttl.ParseDuration(defaultTTL)
				if err != nil {
					return usageErr(err, "")
				}
				if ttlMs = d.Milliseconds(); ttlMs < 0 {
					return usageErr(fmt.Errorf("--default-ttl must be positive, or 0 for none"), "")
				}
			}
			if fs.Changed("on-full") && full != string(store.Reject) && full != string(store.EvictSoonest) {
				return usageErr(fmt.Errorf("--on-full %q: must be reject or evict-soonest", full), "")
			}
			if encrypt && noEncrypt {
				return usageErr(errors.New("--encrypt and --no-encrypt contradict each other"), "")
			}
			change := fs.Changed("max-keys") || fs.Changed("default-ttl") || fs.Changed("on-full") || encrypt || noEncrypt
			var p store.Policy
			var encrypted bool
			sealedValues := false // --encrypt sealed values the bucket held
			ss, err := a.sealed()
			if err != nil {
				return err
			}
			update := a.View
			if change {
				update = func(fn func(store.Tx) error) error {
					if encrypt {
						// No lazy reap first: it would free expired
						// plaintext before the erasing is on (below).
						return a.update(context.Background(), func(tx *hooks.Tx) error { return fn(tx) })
					}
					return a.Update(func(tx *hooks.Tx) error { return fn(tx) })
				}
			}
			err = update(func(tx store.Tx) error {
				var err error
				if p, err = tx.Policy(name); errors.Is(err, store.ErrCorrupt) && fs.Changed("max-keys") && fs.Changed("default-ttl") && fs.Changed("on-full") {
					// A damaged policy replaced whole: how the error
					// tells the user to repair it, so it must not need
					// the old one.
					p, err = store.Policy{}, nil
				}
				if err != nil {
					return err
				}
				// Under the hooks layer, not over it: encrypting the
				// values there changes none of them, so it records no set
				// events (as rekey records none), and the sealing layer
				// that then writes them is the one that knows the bucket
				// is now encrypted.
				raw := tx
				if h, ok := tx.(*hooks.Tx); ok {
					raw = h.Tx
				}
				st := ss.Tx(raw)
				if encrypted, err = st.Encrypted(name); err != nil || !change {
					return err
				}
				if encrypt && !encrypted {
					// Expired values still stored would stay there in
					// plaintext (reseal sees live ones only) until
					// reaped: reap them all first, zeroed where the
					// store would keep their bytes, recording their
					// expire events, as rekey does.
					if err := st.EraseFreed(); err != nil {
						return err
					}
					if err := reapAll(tx); err != nil {
						return err
					}
					n, err := raw.Count(name)
					if err != nil {
						return err
					}
					sealedValues = n > 0
					if _, err := st.EnableEncryption(name); err != nil {
						return err
					}
					// Events recorded while the bucket was plain (and
					// the expire events of the reap above) carry its
					// plaintext: sealed too, zeroed where they were.
					if err := hooks.SealPlainEvents(st, name); err != nil {
						return err
					}
				}
				if noEncrypt && encrypted {
					// Events of the (empty) bucket still waiting for hooks
					// added with --decrypt are sealed under the data key
					// this removes: written back plain.
					reseal, err := hooks.ResealEvents(st, name)
					if err != nil {
						return err
					}
					if _, err := st.DisableEncryption(name, false); err != nil {
						return err
					}
					if err := reseal(); err != nil {
						return err
					}
				}
				if !fs.Changed("max-keys") && !fs.Changed("default-ttl") && !fs.Changed("on-full") {
					return nil
				}
				if fs.Changed("max-keys") {
					p.MaxKeys = maxKeys
				}
				if fs.Changed("default-ttl") {
					p.DefaultTTL = ttlMs
				}
				if fs.Changed("on-full") {
					p.OnFull = store.OnFull(full)
				}
				return tx.SetPolicy(name, p)
			})
			if errors.Is(err, seal.ErrSealed) {
				return &exitError{kind: store.KindPolicy, err: err, hint: "decrypt it first: livedict bucket rekey " + name + " --decrypt"}
			}
			if err == nil && sealedValues {
				a.compactAfterSealing(ss)
			}
			if err != nil || change {
				return err
			}
			if a.JSON {
				o := append(object{{"bucket", name}}, policyFields(p)...)
				if encrypted { // only then, so the plain policy reads as before
					o = append(o, field{"encrypted", true})
				}
				a.jsonLine(o)
				return nil
			}
			a.printf("max_keys = %d\ndefault_ttl = %q\non_full = %q\n", p.MaxKeys, defaultTTLText(p), onFull(p))
			if encrypted {
				a.printf("encrypted = true\n")
			}
			return nil
		},
	}
	f := c.Flags()
	f.Int64Var(&maxKeys, "max-keys", 0, "hold at most `N` live keys (0 = no limit)")
	f.StringVar(&defaultTTL, "default-ttl", "", "TTL `D` for keys written without one (0 = none)")
	f.StringVar(&full, "on-full", "", "what a full bucket does, `ACTION`: reject or evict-soonest")
	f.BoolVar(&encrypt, "encrypt", false, "encrypt the bucket's values with age (see 'livedict identity')")
	f.BoolVar(&noEncrypt, "no-encrypt", false, "stop encrypting the (empty) bucket")
	return c
}

func newBucketDropCmd(a *App) *cobra.Command {
	var yes bool
	c := &cobra.Command{
		Use:     "drop NAME",
		Example: "  livedict bucket drop scratch          # asks on a terminal\n  livedict bucket drop scratch --yes    # in a script",
		Short:   "Delete a bucket, its keys and its policy",
		Long: `Delete bucket NAME with all its keys and its policy. On a terminal it asks
first; otherwise --yes is required. Exit 1 when the bucket does not exist.`,
		Args:              args(1, 1),
		ValidArgsFunction: completeBuckets(a, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a.changesOnly = true // a missing store stays missing (store.NoCreate)
			name := args[0]
			if err := store.ValidateBucket(name); err != nil {
				return usageErr(err, "")
			}
			if !yes {
				if !a.IO.InTTY || !a.IO.ErrTTY {
					return usageErr(fmt.Errorf("bucket drop %s needs --yes when not run from a terminal", name), "")
				}
				var n int64
				var p store.Policy
				if err := a.View(func(tx store.Tx) error {
					var err error
					if n, err = tx.Count(name); err != nil {
						return err
					}
					p, err = tx.Policy(name)
					return err
				}); err != nil {
					return err
				}
				if n == 0 && p == (store.Policy{}) {
					// No keys, no policy: nothing to drop (exit 1), and
					// nothing to ask about ("drop nosuch and its 0 keys?").
					return errNotFound
				}
				fmt.Fprintf(a.IO.Err, "Drop bucket %q and its %s? [y/N] ", name, plural(n, "key"))
				line, _ := bufio.NewReader(a.IO.In).ReadString('\n')
				if ans := strings.ToLower(strings.TrimSpace(line)); ans != "y" && ans != "yes" {
					fmt.Fprintln(a.IO.Err, "livedict: nothing dropped")
					return errNotFound
				}
			}
			var had bool
			if err := a.Update(func(tx *hooks.Tx) error {
				var err error
				had, err = tx.DropBucket(name)
				return err
			}); err != nil {
				return err
			}
			if !had {
				return errNotFound
			}
			return nil
		},
	}
	c.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask")
	return c
}

// reapAll reaps every expired entry of the store in tx, recording their
// expire events: before a bucket's values are sealed anew, none may stay
// behind under the old key, or in plaintext.
func reapAll(tx store.Tx) error {
	for {
		reaped, err := tx.Reap(1000, nil)
		if err != nil || reaped < 1000 {
			return err
		}
	}
}
