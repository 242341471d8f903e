package cli

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"

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

  farewell keys gossip      a gossip encryption key (AES-256) for cluster.secret_keys
  farewell keys evict       an eviction key pair: the signing key for orchestrators
                            (cluster.evict_signing_key: worker, dev), the verify key
                            for every node (cluster.evict_verify_key)
  farewell keys files DIR   both, as environment files for systemd's EnvironmentFile=
                            or kubectl create secret --from-env-file=: DIR/orchestrator.env
                            and DIR/node.env, 0600`,
		Annotations: map[string]string{skipConfig: "true"},
	}
	cmd.AddCommand(&cobra.Command{
		Use:         "gossip",
		Short:       "Print a new gossip encryption key",
		Args:        cobra.NoArgs,
		Annotations: map[string]string{skipConfig: "true"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := gossipKey()
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "# every member; the first key encrypts, all decrypt (see the README on rotation)\ncluster:\n  secret_keys:\n    - %s\n", k)
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
	cmd.AddCommand(&cobra.Command{
		Use:   "files DIR",
		Short: "Write a new gossip key and eviction key pair as environment files for the orchestrators and the nodes",
		Long: `Write a new gossip key and a new eviction key pair as two environment files (0600, in
DIR, made 0700 if missing):

  DIR/orchestrator.env   FAREWELL_CLUSTER_SECRET_KEYS and FAREWELL_CLUSTER_EVICT_SIGNING_KEY,
                         for farewell worker
  DIR/node.env           FAREWELL_CLUSTER_SECRET_KEYS and FAREWELL_CLUSTER_EVICT_VERIFY_KEY,
                         for every node

They are what systemd's EnvironmentFile= (deploy/systemd) and kubectl create secret
generic --from-env-file= (deploy/kubernetes) read. Keys are made once per cluster:
when either file exists, nothing is written.`,
		Args:        cobra.ExactArgs(1),
		Annotations: map[string]string{skipConfig: "true"},
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			orch, node := filepath.Join(dir, "orchestrator.env"), filepath.Join(dir, "node.env")
			for _, f := range []string{orch, node} {
				if _, err := os.Lstat(f); err == nil {
					return usageError("%s exists: keys are made once per cluster (remove both files to make new ones, then give every member the new keys)", f)
				}
			}
			gossip, err := gossipKey()
			if err != nil {
				return err
			}
			signer, verifier, err := cluster.EvictKeyPair()
			if err != nil {
				return err
			}
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return err
			}
			b64 := base64.StdEncoding.EncodeToString
			files := []struct{ path, what, content string }{
				{orch, "gossip key, eviction signing key: for the orchestrators",
					fmt.Sprintf("# farewell worker: the gossip key and the key that signs evictions\nFAREWELL_CLUSTER_SECRET_KEYS=%s\nFAREWELL_CLUSTER_EVICT_SIGNING_KEY=%s\n", gossip, b64(signer.Seed()))},
				{node, "gossip key, eviction verify key: for every node",
					fmt.Sprintf("# every node: the gossip key and the key evictions must be signed with\nFAREWELL_CLUSTER_SECRET_KEYS=%s\nFAREWELL_CLUSTER_EVICT_VERIFY_KEY=%s\n", gossip, b64(verifier))},
			}
			for i, f := range files {
				if err := writeNew(f.path, f.content); err != nil {
					if i > 0 {
						_ = os.Remove(files[0].path) // both or neither
					}
					return err
				}
			}
			for _, f := range files {
				fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%s)\n", f.path, f.what)
			}
			return nil
		},
	})
	return cmd
}

// gossipKey is a new AES-256 gossip key, in base64.
func gossipKey() (string, error) {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(k), nil
}

// writeNew writes a file that must not exist yet, 0600.
func writeNew(path, content string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}
