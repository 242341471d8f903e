package cli

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/farewell-project/farewell/cluster"
)

func (a *app) keysCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Make the cluster's keys: gossip encryption, eviction signing",
		Long: `Make keys for cluster.* (printed as YAML to paste into farewell.yaml, or to put in the
environment; never pass a key on the command line, where every user of the machine can
read it):

  farewell keys gossip   a gossip encryption key (AES-256) for cluster.secret_keys
  farewell keys evict    an eviction key pair: the signing key for orchestrators
                         (cluster.evict_signing_key: worker, dev), the verify key for
                         every node (cluster.evict_verify_key)`,
		Annotations: map[string]string{skipConfig: "true"},
	}
	cmd.AddCommand(&cobra.Command{
		Use:         "gossip",
		Short:       "Print a new gossip encryption key",
		Args:        cobra.NoArgs,
		Annotations: map[string]string{skipConfig: "true"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			k := make([]byte, 32)
			if _, err := rand.Read(k); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "# every member; the first key encrypts, all decrypt (see the README on rotation)\ncluster:\n  secret_keys:\n    - %s\n",
				base64.StdEncoding.EncodeToString(k))
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:         "evict",
		Short:       "Print a new eviction key pair",
		Args:        cobra.NoArgs,
		Annotations: map[string]string{skipConfig: "true"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			signer, verifier, err := cluster.EvictKeyPair()
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "# orchestrators only (farewell worker, dev): they sign evictions\ncluster:\n  evict_signing_key: %s\n\n"+
				"# every node: evictions not signed with the key above are ignored\ncluster:\n  evict_verify_key: %s\n",
				base64.StdEncoding.EncodeToString(signer.Seed()), base64.StdEncoding.EncodeToString(verifier))
			return nil
		},
	})
	return cmd
}
