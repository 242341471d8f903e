package cluster

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
)

// Who may say what. Gossip encryption (the shared key) keeps outsiders out; inside,
// every member is not equal:
//
//   - A member's own state, its leave and its liveness (heartbeats) are signed with a key its
//     process makes at start and publishes, signed, in its memberlist metadata: nobody
//     else can speak for that process (mark it left, pin its state with a huge version,
//     make it look blocked with a huge heartbeat sequence).
//   - Evictions are signed with a key only orchestrators hold (Options.EvictSigner);
//     members check them with its public half (Options.EvictVerifier) and ignore any
//     eviction that is unsigned or wrongly signed.
//
// A member with no eviction verifier accepts unsigned evictions: that is for clusters on
// loopback, and whoever configures one elsewhere says so (cluster.insecure).

// Domains keep a signature of one kind of message from passing for another.
const (
	domainMeta      = "farewell/meta/v1\x00"
	domainState     = "farewell/state/v1\x00"
	domainHeartbeat = "farewell/heartbeat/v1\x00"
	domainLiveness  = "farewell/liveness/v1\x00"
	domainLeft      = "farewell/left/v1\x00"
	domainEvict     = "farewell/evict/v1\x00"
)

// Bounds of what a member accepts from the network.
const (
	// maxMessage caps every message but a view dump.
	maxMessage = 64 << 10
	// maxDump caps a view dump, and maxRemoteState what push/pull brings.
	maxDump        = 4 << 20
	maxRemoteState = 4 << 20
	// maxLearned caps the members known only from what peers said (who left, died or
	// was evicted before this one joined); past it, such news is dropped.
	maxLearned = 4096
	// maxAnswering caps the queries answered at once; more are dropped.
	maxAnswering = 16
	// maxVersionJump and maxSeqJump reject implausible jumps of a member's state
	// version and heartbeat sequence, even signed.
	maxVersionJump = 1 << 10
	maxSeqJump     = 1 << 20
)

// signed computes what a signature covers: the domain, then the message as JSON with
// its signature field empty (encoding/json writes struct fields in a fixed order).
func signed(domain string, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("sign cluster message: %v", err)) // only our own structs get here
	}
	return append([]byte(domain), b...)
}

func sign(key ed25519.PrivateKey, domain string, v any) []byte {
	return ed25519.Sign(key, signed(domain, v))
}

func verify(key ed25519.PublicKey, domain string, v any, sig []byte) bool {
	return len(key) == ed25519.PublicKeySize && len(sig) == ed25519.SignatureSize && ed25519.Verify(key, signed(domain, v), sig)
}

func newProcessKey() ed25519.PrivateKey {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(fmt.Sprintf("make a process key: %v", err))
	}
	return key
}

// signMeta signs md (its signature field emptied) with key.
func signMeta(key ed25519.PrivateKey, md meta) meta {
	md.Sig = nil
	md.Sig = sign(key, domainMeta, md)
	return md
}

// checkMeta reports whether md is signed by the key it carries.
func checkMeta(md meta) bool {
	sig := md.Sig
	md.Sig = nil
	return verify(md.Key, domainMeta, md, sig)
}

// EvictKeyPair makes an eviction key pair: the private half for orchestrators
// (Options.EvictSigner), the public half for every member (Options.EvictVerifier).
func EvictKeyPair() (ed25519.PrivateKey, ed25519.PublicKey, error) {
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	return key, pub, err
}

// Loopback reports whether host is a loopback address (or localhost): a member bound
// there can be reached from this machine only.
func Loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
