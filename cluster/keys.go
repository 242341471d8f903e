package cluster

import (
	"fmt"

	"github.com/hashicorp/memberlist"
)

// keyring builds memberlist's keyring: the first key encrypts, all decrypt.
func keyring(keys [][]byte) (*memberlist.Keyring, error) {
	for i, k := range keys {
		switch len(k) {
		case 16, 24, 32:
		default:
			return nil, fmt.Errorf("gossip key %d is %d bytes: it must be 16, 24 or 32", i+1, len(k))
		}
	}
	return memberlist.NewKeyring(keys[1:], keys[0])
}

// SetKeys changes the gossip keys while the member runs: the first encrypts, every one
// decrypts. A rolling rotation changes them on every member in turn, in three rounds:
// add the new key after the old ([old, new]), make it the first ([new, old]), drop the
// old one ([new]) — at no point does a member stop understanding another, so no one
// leaves. It fails when the member started without gossip encryption.
func (m *Member) SetKeys(keys [][]byte) error {
	kr := m.keyring
	if kr == nil {
		return fmt.Errorf("gossip keys: this member started without gossip encryption (set the keys and restart it)")
	}
	if len(keys) == 0 {
		return fmt.Errorf("gossip keys: none given; a member that encrypts cannot stop")
	}
	if _, err := keyring(keys); err != nil {
		return err
	}
	for _, k := range keys {
		if err := kr.AddKey(k); err != nil {
			return fmt.Errorf("gossip keys: %w", err)
		}
	}
	if err := kr.UseKey(keys[0]); err != nil {
		return fmt.Errorf("gossip keys: %w", err)
	}
	for _, old := range kr.GetKeys() {
		keep := false
		for _, k := range keys {
			keep = keep || string(k) == string(old)
		}
		if !keep {
			if err := kr.RemoveKey(old); err != nil {
				return fmt.Errorf("gossip keys: %w", err)
			}
		}
	}
	m.log.Info("gossip keys changed", "keys", len(keys))
	return nil
}
