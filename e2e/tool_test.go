package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/farewell-project/farewell/worker"
	"github.com/farewell-project/farewell/workflows"
)

// runTool is the test binary's tool mode (FAREWELL_E2E_EXEC=tool): helpers the
// production testbed runs on its hosts.
//
//	register-namespace FRONTEND NAMESPACE   create the namespace with Farewell's search
//	                                        attributes, and wait until it is usable
//	checker FRONTEND NAMESPACE              the checker (checker_test.go)
//	get URL                                 print what GET URL answers
//	requests URL N                          N GETs at once; "K of N ok" once all ended
func runTool(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "tool: register-namespace or checker")
		return 2
	}
	switch args[0] {
	case "register-namespace":
		if len(args) != 3 {
			fmt.Fprintln(os.Stderr, "register-namespace FRONTEND NAMESPACE")
			return 2
		}
		if err := registerNamespace(args[1], args[2], 2*time.Minute); err != nil {
			fmt.Fprintln(os.Stderr, "register-namespace:", err)
			return 1
		}
		fmt.Println("namespace ready")
		return 0
	case "checker":
		return runChecker(args[1:], os.Stdin, os.Stdout)
	case "get":
		resp, err := http.Get(args[1])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer resp.Body.Close()
		_, _ = io.Copy(os.Stdout, resp.Body)
		return 0
	case "requests":
		return requests(args[1], args[2])
	}
	fmt.Fprintf(os.Stderr, "tool: unknown command %q\n", args[0])
	return 2
}

// registerNamespace creates the namespace (what `temporal operator namespace create`
// does), adds Farewell's search attributes, and waits until a visibility query on them
// answers: the services learned of both. It retries while the cluster comes up.
func registerNamespace(frontend, namespace string, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	var last error
	for ctx.Err() == nil {
		last = tryRegister(ctx, frontend, namespace)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
	return fmt.Errorf("not ready within %s: %w", limit, last)
}

func tryRegister(ctx context.Context, frontend, namespace string) error {
	nc, err := client.NewNamespaceClient(client.Options{HostPort: frontend, Logger: quietSDKLogger()})
	if err != nil {
		return err
	}
	defer nc.Close()
	err = nc.Register(ctx, &workflowservice.RegisterNamespaceRequest{Namespace: namespace,
		WorkflowExecutionRetentionPeriod: durationpb.New(24 * time.Hour)})
	var exists *serviceerror.NamespaceAlreadyExists
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("register: %w", err)
	}
	c, err := client.Dial(client.Options{HostPort: frontend, Namespace: namespace, Logger: quietSDKLogger()})
	if err != nil {
		return err
	}
	defer c.Close()
	if err := worker.EnsureSearchAttributes(ctx, c, namespace); err != nil {
		return err
	}
	q := fmt.Sprintf("%s = 'probe' AND %s = 'probe'", workflows.SearchAttrNode, workflows.SearchAttrDrain)
	if _, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: namespace, Query: q}); err != nil {
		if strings.Contains(err.Error(), "not defined") || strings.Contains(err.Error(), "invalid") {
			return fmt.Errorf("search attributes not usable yet: %w", err)
		}
		return err
	}
	return nil
}

// requests sends n GETs to url at once and says how many answered 200.
func requests(url, count string) int {
	n, err := strconv.Atoi(count)
	if err != nil || n < 1 {
		fmt.Fprintln(os.Stderr, "requests URL N")
		return 2
	}
	var ok atomic.Int64
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(url)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	fmt.Printf("%d of %d ok\n", ok.Load(), n)
	return 0
}
