// Package kubernetes_test checks the example manifests: well-formed, consistent with
// each other, and with a node's grace period agreeing with its plan.
package kubernetes_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/farewell-project/farewell/config"
	"github.com/farewell-project/farewell/worker"
)

// object is one manifest, as YAML decodes it.
type object map[string]any

// get walks dotted keys ("spec.template.spec"); numbers index lists.
func (o object) get(path string) any {
	var cur any = map[string]any(o)
	for _, k := range strings.Split(path, ".") {
		if o, ok := cur.(object); ok { // yaml decodes nested maps as the named type too
			cur = map[string]any(o)
		}
		switch c := cur.(type) {
		case map[string]any:
			cur = c[k]
		case []any:
			var i int
			if _, err := fmt.Sscan(k, &i); err != nil || i >= len(c) {
				return nil
			}
			cur = c[i]
		default:
			return nil
		}
	}
	return cur
}

func asObject(v any) object {
	switch m := v.(type) {
	case object:
		return m
	case map[string]any:
		return m
	}
	return nil
}

func (o object) str(path string) string { s, _ := o.get(path).(string); return s }

func load(t *testing.T) map[string]object {
	t.Helper()
	b, err := os.ReadFile("farewell.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]object{}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for i := 0; ; i++ {
		var o object
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		kind, name := o.str("kind"), o.str("metadata.name")
		if o.str("apiVersion") == "" || kind == "" || name == "" {
			t.Fatalf("document %d: apiVersion, kind and metadata.name are required: %v", i, o)
		}
		out[kind+"/"+name] = o
	}
	return out
}

func TestManifests(t *testing.T) {
	objs := load(t)
	for _, want := range []string{"ConfigMap/farewell-config", "Service/farewell-node", "StatefulSet/farewell-node", "Deployment/farewell-orchestrator"} {
		if objs[want] == nil {
			t.Fatalf("no %s in farewell.yaml (have %v)", want, keys(objs))
		}
	}
	file := filepath.Join(t.TempDir(), "farewell.yaml")
	data := asObject(objs["ConfigMap/farewell-config"].get("data"))
	text, _ := data["farewell.yaml"].(string)
	if text == "" {
		t.Fatal("ConfigMap farewell-config holds no farewell.yaml")
	}
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	sts, svc, dep := objs["StatefulSet/farewell-node"], objs["Service/farewell-node"], objs["Deployment/farewell-orchestrator"]

	// The nodes: their pods run the plan in the ConfigMap, and the kubelet waits for it.
	node := container(t, sts, "farewell-node")
	cfg := loadConfig(t, file, node)
	grace := cfg.Shutdown.MustPlan().GracePeriod()
	if got := seconds(t, sts); got != grace {
		t.Errorf("StatefulSet: terminationGracePeriodSeconds %s, but farewell config grace-period says %s", got, grace)
	}
	if cfg.Shutdown.GracePeriod != grace {
		t.Errorf("StatefulSet: the node is told its grace period is %s (FAREWELL_SHUTDOWN_GRACE_PERIOD), the kubelet gives it %s", cfg.Shutdown.GracePeriod, grace)
	}
	if got := secretRef(node); got != "farewell-node-keys" {
		t.Errorf("nodes take their keys from Secret %q, want farewell-node-keys (see the file's header)", got)
	}
	// They find each other through the headless Service: the join addresses are pods of
	// the StatefulSet that exist.
	if sts.str("spec.serviceName") != svc.str("metadata.name") || svc.str("spec.clusterIP") != "None" {
		t.Errorf("StatefulSet serviceName %q, Service %q clusterIP %q: want the headless Service", sts.str("spec.serviceName"), svc.str("metadata.name"), svc.str("spec.clusterIP"))
	}
	replicas, _ := sts.get("spec.replicas").(int)
	seed := regexp.MustCompile(`^` + sts.str("metadata.name") + `-(\d+)\.` + svc.str("metadata.name") + `:7946$`)
	if len(cfg.Cluster.Join) == 0 {
		t.Error("cluster.join is empty")
	}
	for _, j := range cfg.Cluster.Join {
		m := seed.FindStringSubmatch(j)
		var i int
		if m != nil {
			fmt.Sscan(m[1], &i)
		}
		if m == nil || i >= replicas {
			t.Errorf("cluster.join %q is not one of the StatefulSet's %d pods through the Service", j, replicas)
		}
	}

	// The orchestrators: the same configuration, the signing key, room to stop.
	orch := container(t, dep, "farewell-worker")
	loadConfig(t, file, orch)
	if got := secretRef(orch); got != "farewell-orchestrator-keys" {
		t.Errorf("orchestrators take their keys from Secret %q, want farewell-orchestrator-keys", got)
	}
	if got := seconds(t, dep); got < worker.StopTimeout+5*time.Second {
		t.Errorf("Deployment: terminationGracePeriodSeconds %s leaves the worker's %s stop no room", got, worker.StopTimeout)
	}

	// Selectors select their own pods.
	for _, o := range []object{sts, dep, svc} {
		sel := asObject(o.get("spec.selector.matchLabels"))
		if sel == nil {
			sel = asObject(o.get("spec.selector"))
		}
		labels := asObject(sts.get("spec.template.metadata.labels"))
		if o.str("kind") == "Deployment" {
			labels = asObject(dep.get("spec.template.metadata.labels"))
		}
		for k, v := range sel {
			if labels[k] != v {
				t.Errorf("%s/%s selects %s=%v, which its pods do not carry", o.str("kind"), o.str("metadata.name"), k, v)
			}
		}
	}
}

// container returns the named container of o's pod template, with its env resolved as
// the kubelet would for a pod named <name>-0 at 10.0.0.1.
func container(t *testing.T, o object, name string) object {
	t.Helper()
	cs, _ := o.get("spec.template.spec.containers").([]any)
	for _, c := range cs {
		c := asObject(c)
		if c.str("name") != name {
			continue
		}
		args, _ := c.get("args").([]any)
		if !strings.Contains(fmt.Sprintln(args...), "--config /etc/farewell/farewell.yaml") {
			t.Errorf("%s: args %v do not read /etc/farewell/farewell.yaml", name, args)
		}
		mounts, _ := c.get("volumeMounts").([]any)
		mounted := false
		for _, m := range mounts {
			if asObject(m).str("mountPath") == "/etc/farewell" {
				mounted = true
			}
		}
		if !mounted {
			t.Errorf("%s: the ConfigMap is not mounted at /etc/farewell", name)
		}
		return c
	}
	t.Fatalf("%s/%s has no container %s", o.str("kind"), o.str("metadata.name"), name)
	return nil
}

// env is the container's environment as the kubelet makes it: fieldRefs of a pod
// named farewell-node-0 at 10.0.0.1, $(VAR) expanded from the variables before.
func env(t *testing.T, c object) []string {
	t.Helper()
	fields := map[string]string{"metadata.name": "farewell-node-0", "status.podIP": "10.0.0.1"}
	vars := map[string]string{}
	var out []string
	list, _ := c.get("env").([]any)
	for _, e := range list {
		e := asObject(e)
		name, val := e.str("name"), e.str("value")
		if ref := e.str("valueFrom.fieldRef.fieldPath"); ref != "" {
			if val = fields[ref]; val == "" {
				t.Fatalf("%s: fieldRef %s not known to the test", name, ref)
			}
		}
		val = regexp.MustCompile(`\$\((\w+)\)`).ReplaceAllStringFunc(val, func(m string) string { return vars[m[2:len(m)-1]] })
		vars[name] = val
		out = append(out, name+"="+val)
	}
	return out
}

func loadConfig(t *testing.T, file string, c object) config.Config {
	t.Helper()
	e := env(t, c)
	if unknown := config.UnknownEnv(e); len(unknown) > 0 {
		t.Errorf("%s: %v", c.str("name"), unknown)
	}
	cfg, _, err := config.Load(config.Source{File: file, Env: e})
	if err != nil {
		t.Fatalf("%s: the ConfigMap's farewell.yaml with the container's env: %v", c.str("name"), err)
	}
	return cfg
}

func secretRef(c object) string { return c.str("envFrom.0.secretRef.name") }

func seconds(t *testing.T, o object) time.Duration {
	t.Helper()
	n, ok := o.get("spec.template.spec.terminationGracePeriodSeconds").(int)
	if !ok {
		t.Fatalf("%s/%s: no terminationGracePeriodSeconds", o.str("kind"), o.str("metadata.name"))
	}
	return time.Duration(n) * time.Second
}

func keys(m map[string]object) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
