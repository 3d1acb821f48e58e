package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/stack-containers/stack/network"
	"github.com/stack-containers/stack/supervisor"
)

func psCommand() *command {
	return &command{
		name:    "ps",
		args:    "[--format table|json]",
		summary: "List the stack's containers",
		help: `One row per container: name, state (created, running, restarting, exited,
stopped), pid on the host (0 when not running), restarts, OOM kills, memory
used/limit, address on the stack network, published ports, and uptime or
exit code.

--format json prints one JSON array; each element has name, state, health
("" without a health check, else starting, healthy or unhealthy), pid,
restarts, oom_kills, exit_code (null while running), memory_limit (bytes, 0
when none), memory_usage (bytes), ip ("" when not on the stack network), ports (a list
of host_ip, host_port, container_port, protocol) and uptime (seconds, 0 when
not running).`,
		setup: func(fs *flag.FlagSet) func(context.Context, *app, []string) error {
			format := fs.String("format", "table", "output format: table or json")
			return func(_ context.Context, a *app, args []string) error {
				if *format != "table" && *format != "json" {
					return usageError("", "ps: unknown format %q: want table or json", *format)
				}
				if len(args) > 0 {
					return usageError("name the manifest with -f FILE", "ps takes no arguments")
				}
				name, cfg, err := a.target(nil)
				if err != nil {
					return err
				}
				st, err := supervisor.ReadStatus(cfg, name, time.Now())
				if err != nil {
					return err
				}
				for _, w := range st.Warnings {
					fmt.Fprintf(a.stderr, "stack: warning: %s\n", w)
				}
				if *format == "json" {
					return printJSON(a, st.Containers)
				}
				return printTable(a, st.Containers)
			}
		},
	}
}

func printJSON(a *app, rows []supervisor.Status) error {
	if rows == nil {
		rows = []supervisor.Status{}
	}
	b, err := json.MarshalIndent(rows, "", "  ")
	if err != nil {
		return fmt.Errorf("ps: encode: %w", err)
	}
	if _, err := a.stdout.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("ps: %w", err)
	}
	return nil
}

func printTable(a *app, rows []supervisor.Status) error {
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tPID\tRESTARTS\tOOM KILLS\tMEMORY\tIP\tPORTS\tSTATUS")
	for _, r := range rows {
		limit := "-"
		if r.MemoryLimit > 0 {
			limit = supervisor.FormatBytes(r.MemoryLimit)
		}
		status := ""
		switch {
		case r.State == supervisor.StateRunning:
			status = "up " + (time.Duration(r.Uptime) * time.Second).String()
			if r.Health != "" {
				status += " (" + r.Health + ")"
			}
		case r.ExitCode != nil:
			status = "exit " + strconv.Itoa(*r.ExitCode)
		}
		ip := r.IP
		if ip == "" {
			ip = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s / %s\t%s\t%s\t%s\n",
			r.Name, r.State, r.Pid, r.Restarts, r.OOMKills, supervisor.FormatBytes(r.MemoryUsage), limit, ip, formatPorts(r.Ports), status)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("ps: %w", err)
	}
	return nil
}

// formatPorts writes published ports as Docker does: 0.0.0.0:8080->80/tcp.
func formatPorts(ports []network.Port) string {
	if len(ports) == 0 {
		return "-"
	}
	parts := make([]string, len(ports))
	for i, p := range ports {
		parts[i] = fmt.Sprintf("%s:%d->%d/%s", p.HostIP, p.HostPort, p.ContainerPort, p.Protocol)
	}
	return strings.Join(parts, ",")
}
