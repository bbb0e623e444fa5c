package cmd

import (
	"github.com/spf13/cobra"

	"github.com/livedict/livedict/pkg/seal"
)

func newIdentityCmd(a *App) *cobra.Command {
	return &cobra.Command{
		Use:   "identity",
		Short: "Print this host's age public key (made on first use)",
		Long: `Print the public key of this host's age identity (identity_file, by default
$XDG_CONFIG_HOME/livedict/identity.txt), making the identity, mode 0600, when it
does not exist yet. Add the key to another host's recipients_file and run
'livedict bucket rekey NAME' there, and this host can read NAME too.`,
		// The key goes into the recipients_file of the host that rekeys
		// (it has no default), not into the file of the host printing it.
		Example: `  livedict identity
  ssh hostb livedict identity >> ~/.config/livedict/recipients.txt   # recipients_file here`,
		Args: args(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			pub, err := seal.PublicKey(a.Config.IdentityFile)
			if err != nil {
				return storeErr(err)
			}
			if a.JSON {
				return a.jsonLine(object{{"identity_file", a.Config.IdentityFile}, {"public_key", pub}})
			}
			a.printf("%s\n", pub)
			return nil
		},
	}
}
