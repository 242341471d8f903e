package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

const (
	msgDumpQuery byte = 'd'
	msgDumpReply byte = 'D'
)

type dumpQuery struct {
	ID   uint64 `json:"id"`
	From string `json:"f"`
}

// dumpReply carries a member's whole view. Times travel as ages so that clocks of
// different machines do not matter.
type dumpReply struct {
	ID      uint64         `json:"id"`
	From    string         `json:"f"`
	Members []remoteMember `json:"m"`
}

type remoteMember struct {
	MemberInfo
	HeartbeatAgeMS int64 `json:"hb_age_ms"`
	SinceAgeMS     int64 `json:"since_age_ms"`
}

// RemoteView asks peer for its whole view of the cluster. A member that has been in the
// cluster a while knows heartbeat ages and blocked flags that a newcomer has not had
// time to observe.
func (m *Member) RemoteView(ctx context.Context, peer string) ([]MemberInfo, error) {
	n, ok := m.nodeFor(peer)
	if !ok {
		return nil, fmt.Errorf("view of %s: %w", peer, ErrUnknownNode)
	}
	m.mu.Lock()
	id := m.newQueryIDLocked()
	ch := make(chan dumpReply, 1)
	m.dumps[id] = ch
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.dumps, id)
		m.mu.Unlock()
	}()
	if err := m.ml.SendReliable(n, encode(msgDumpQuery, dumpQuery{ID: id, From: m.name})); err != nil {
		return nil, fmt.Errorf("ask %s for its view: %w", peer, err)
	}
	select {
	case r := <-ch:
		now := time.Now()
		out := make([]MemberInfo, len(r.Members))
		for i, rm := range r.Members {
			out[i] = rm.MemberInfo
			out[i].LastHeartbeat = now.Add(-time.Duration(rm.HeartbeatAgeMS) * time.Millisecond)
			out[i].Since = now.Add(-time.Duration(rm.SinceAgeMS) * time.Millisecond)
		}
		return out, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("ask %s for its view: %w", peer, ctx.Err())
	}
}

// remoteMembers is this member's view with times as ages.
func (m *Member) remoteMembers() []remoteMember {
	now := time.Now()
	list := m.Members()
	out := make([]remoteMember, len(list))
	for i, info := range list {
		out[i] = remoteMember{MemberInfo: info,
			HeartbeatAgeMS: info.HeartbeatAge(now).Milliseconds(), SinceAgeMS: now.Sub(info.Since).Milliseconds()}
	}
	return out
}

// ViewHandler serves this member's view on GET as a JSON array: every member it knows,
// itself included, with its state, role, process instance, and heartbeat and state ages
// in milliseconds (hb_age_ms, since_age_ms). Status endpoints mount it at /members; it
// tells a watcher how this member sees the cluster without joining it.
func (m *Member) ViewHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			http.Error(w, "GET only", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(m.remoteMembers())
	})
}

func (m *Member) answerDump(q dumpQuery) {
	n, ok := m.askerNode(q.From)
	if !ok {
		return
	}
	reply := dumpReply{ID: q.ID, From: m.name, Members: m.remoteMembers()}
	if err := m.ml.SendReliable(n, encode(msgDumpReply, reply)); err != nil {
		m.log.Debug("view dump not sent", "to", q.From, "error", err)
	}
}

func (m *Member) onDumpReply(b []byte) {
	var r dumpReply
	if json.Unmarshal(b, &r) != nil {
		return
	}
	m.mu.Lock()
	ch, ok := m.dumps[r.ID]
	m.mu.Unlock()
	if ok {
		select {
		case ch <- r:
		default:
		}
	}
}
