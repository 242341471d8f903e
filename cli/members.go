package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/farewell-project/farewell/agent"
	"github.com/farewell-project/farewell/cluster"
)

// membersObserverPrefix names the short-lived observers of `farewell members`.
const membersObserverPrefix = "farewell-members-"

// memberJSON is one member in `farewell members --output json`.
type memberJSON struct {
	Name           string        `json:"name"`
	Addr           string        `json:"addr"`
	State          cluster.State `json:"state"`
	Role           cluster.Role  `json:"role"`
	Instance       string        `json:"instance"`
	HeartbeatAge   string        `json:"heartbeat_age"`
	HeartbeatAgeMS int64         `json:"heartbeat_age_ms"`
	Blocked        bool          `json:"blocked"`
	EvictedBy      string        `json:"evicted_by,omitempty"`
	EvictReason    string        `json:"evict_reason,omitempty"`
}

func (a *app) membersCommand() *cobra.Command {
	var (
		join    []string
		output  string
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "members --join HOST:PORT",
		Short: "List the members of a cluster",
		Long: `Join the cluster briefly as an observer, print every member's name, address, state
(alive, leaving, left, dead, evicted), role, heartbeat age and blocked flag as seen by
the member joined through, and leave.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			if len(join) == 0 {
				join = a.cfg.Cluster.Join
			}
			if len(join) == 0 {
				return usageError("members needs --join HOST:PORT (or cluster.join)")
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			list, err := a.listMembers(ctx, join)
			if err != nil {
				return err
			}
			if output == "json" {
				return printMembersJSON(cmd.OutOrStdout(), list)
			}
			printMembersText(cmd.OutOrStdout(), list)
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&join, "join", nil, "host:port of a member to ask; repeatable (default: cluster.join)")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "give up after this long")
	return cmd
}

func checkOutput(output string) error {
	if output != "text" && output != "json" {
		return usageError("--output %q: want text or json", output)
	}
	return nil
}

// listMembers joins as a short-lived observer and returns the view of the member it
// joined through (falling back to its own view).
func (a *app) listMembers(ctx context.Context, join []string) ([]cluster.MemberInfo, error) {
	cc := a.cfg.Cluster
	cc.Name = fmt.Sprintf("%s%d", membersObserverPrefix, os.Getpid())
	cc.Bind = "127.0.0.1:0"
	if host, _, err := net.SplitHostPort(join[0]); err == nil && host != "127.0.0.1" && host != "localhost" {
		cc.Bind = "0.0.0.0:0"
	}
	cc.Advertise = ""
	mopts, _, err := agent.MemberOptions(cc, agent.ForLooking)
	if err != nil {
		return nil, err
	}
	mopts.Logger = a.logger.With("component", "members")
	m, err := cluster.New(mopts)
	if err != nil {
		return nil, err
	}
	defer m.Leave(time.Second)
	if err := m.Join(ctx, join); err != nil {
		return nil, err
	}
	for _, info := range m.Members() {
		if info.Name == m.Name() || info.State != cluster.StateAlive {
			continue
		}
		if !sameAddr(info.Addr, join) {
			continue
		}
		if list, err := m.RemoteView(ctx, info.Name); err == nil {
			return list, nil
		}
	}
	var list []cluster.MemberInfo
	for _, info := range m.Members() {
		if info.Name != m.Name() {
			list = append(list, info)
		}
	}
	return list, nil
}

func sameAddr(addr string, join []string) bool {
	for _, j := range join {
		if j == addr {
			return true
		}
		if host, port, err := net.SplitHostPort(j); err == nil {
			if ips, err := net.LookupHost(host); err == nil {
				for _, ip := range ips {
					if net.JoinHostPort(ip, port) == addr {
						return true
					}
				}
			}
		}
	}
	return false
}

func membersForOutput(list []cluster.MemberInfo) []memberJSON {
	now := time.Now()
	out := make([]memberJSON, 0, len(list))
	for _, m := range list {
		if m.Role == cluster.RoleObserver && strings.HasPrefix(m.Name, membersObserverPrefix) {
			continue // another `farewell members` passing through
		}
		age := m.HeartbeatAge(now)
		out = append(out, memberJSON{Name: m.Name, Addr: m.Addr, State: m.State, Role: m.Role, Instance: m.Instance,
			HeartbeatAge: age.Round(time.Millisecond).String(), HeartbeatAgeMS: age.Milliseconds(), Blocked: m.Blocked,
			EvictedBy: m.EvictedBy, EvictReason: m.EvictReason})
	}
	return out
}

func printMembersJSON(w io.Writer, list []cluster.MemberInfo) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(membersForOutput(list))
}

func printMembersText(w io.Writer, list []cluster.MemberInfo) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tADDR\tSTATE\tROLE\tHEARTBEAT\tBLOCKED")
	for _, m := range membersForOutput(list) {
		hb := "-"
		if m.Role == cluster.RoleNode && (m.State == cluster.StateAlive || m.State == cluster.StateLeaving) {
			hb = (time.Duration(m.HeartbeatAgeMS) * time.Millisecond).String() + " ago"
		}
		state := string(m.State)
		if m.EvictedBy != "" {
			state += " by " + safe(m.EvictedBy)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", safe(m.Name), m.Addr, state, m.Role, hb, strconv.FormatBool(m.Blocked))
	}
	tw.Flush()
}
