package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/stack-containers/stack/image"
	"github.com/stack-containers/stack/manifest"
)

// Root filesystems: before anything of the stack exists, every container's
// root comes from the image store (an image pulled as its pull policy
// says, an archive unpacked once), its image's config fills in what the
// manifest left unset, user names are looked up in its own /etc/passwd
// and /etc/group, and the image or archive stays marked in use in the
// store until the stack's resources are released, so that a prune
// meanwhile keeps it.

// roots is what the stack holds of the image store.
type roots struct {
	mu   sync.Mutex
	uses []*image.InUse
}

func (r *roots) hold(u *image.InUse) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.uses = append(r.uses, u)
}

// release ends every use; the store's content stays for prune to judge.
func (r *roots) release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, u := range r.uses {
		u.Release()
	}
	r.uses = nil
}

// resolveRoots finds every container's root filesystem: each image once,
// however many containers use it, all of them side by side. The first
// failure names its container (the first, by name, of those using the
// image) and the image.
func (s *Supervisor) resolveRoots(ctx context.Context) error {
	var store *image.Store
	needStore := func() error {
		// Opened only when needed: a stack of rootfs directories makes
		// no data directory.
		if store != nil {
			return nil
		}
		var err error
		store, err = openStore(s.cfg.DataDir, s.cfg.UnpackLimit)
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	images := map[string][]*container{}
	var refs []string
	for _, name := range s.graph.names() {
		c := s.ctrs[name]
		switch {
		case c.def.Image != "":
			if err := needStore(); err != nil {
				return err
			}
			if images[c.def.Image] == nil {
				refs = append(refs, c.def.Image)
			}
			images[c.def.Image] = append(images[c.def.Image], c)
		case image.IsArchive(c.def.Rootfs):
			if err := needStore(); err != nil {
				return err
			}
			g.Go(func() error {
				dir, err := store.Archive(c.def.Rootfs)
				if err != nil {
					return fmt.Errorf("container %q: %w", name, err)
				}
				use, err := store.ArchiveInUse(dir)
				if err != nil {
					return fmt.Errorf("container %q: %w", name, err)
				}
				s.roots.hold(use)
				c.layers = []string{dir}
				return c.resolveUser()
			})
		default:
			c.layers = []string{c.def.Rootfs}
			if err := c.resolveUser(); err != nil {
				return err
			}
		}
	}
	for _, ref := range refs {
		users := images[ref]
		g.Go(func() error {
			img, err := s.getImage(gctx, store, users[0].def)
			if err != nil {
				return fmt.Errorf("container %q: image %s: %w", users[0].def.Name, ref, err)
			}
			use, err := store.Use(img)
			if err != nil {
				return fmt.Errorf("container %q: image %s: %w", users[0].def.Name, ref, err)
			}
			s.roots.hold(use)
			for _, c := range users {
				c.layers, c.imageID = img.LayerDirs, img.ID
				def, err := withImageConfig(c.def, img.Config)
				if err != nil {
					return fmt.Errorf("container %q: image %s: %w", c.def.Name, ref, err)
				}
				c.def = def
				if err := c.resolveUser(); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// getImage gets d's image from the store as its pull policy says.
func (s *Supervisor) getImage(ctx context.Context, store *image.Store, d *manifest.Container) (*image.Image, error) {
	return getImage(ctx, store, s.cfg.Pull, d.Image, image.PullPolicy(d.PullPolicy), nil)
}

func getImage(ctx context.Context, store *image.Store, pull image.Puller, ref string, policy image.PullPolicy, progress func(image.Progress)) (*image.Image, error) {
	src, err := image.ParseSource(ref, "/")
	if err != nil {
		return nil, err
	}
	if pull == nil {
		pull = noPull
	}
	img, err := store.Get(ctx, src, policy, pull, image.PullOptions{Progress: progress})
	// The store's errors name the image; the caller does too.
	return img, unwrapPull(err)
}

// PullImages fetches the images of the named containers of st (all of
// them when names is empty) into the store, as `stack pull` does: each
// image once and side by side, from its registry whatever the pull
// policy. The first failure names its container and image.
func PullImages(ctx context.Context, st *manifest.Stack, cfg Config, names []string, progress func(image.Progress)) ([]*image.Image, error) {
	if len(names) == 0 {
		for name := range st.Containers {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	var refs []string
	users := map[string]string{}
	for _, name := range names {
		d := st.Containers[name]
		if d == nil {
			return nil, fmt.Errorf("stack %q has no container %q", st.Name, name)
		}
		if d.Image == "" || users[d.Image] != "" {
			continue
		}
		refs = append(refs, d.Image)
		users[d.Image] = name
	}
	if len(refs) == 0 {
		return nil, nil
	}
	store, err := openStore(cfg.DataDir, cfg.UnpackLimit)
	if err != nil {
		return nil, err
	}
	pulled := make([]*image.Image, len(refs))
	g, gctx := errgroup.WithContext(ctx)
	for i, ref := range refs {
		g.Go(func() error {
			img, err := getImage(gctx, store, cfg.Pull, ref, image.PullAlways, progress)
			if err != nil {
				return fmt.Errorf("container %q: image %s: %w", users[ref], ref, err)
			}
			pulled[i] = img
			return nil
		})
	}
	return pulled, g.Wait()
}

// ImageUsers maps the ID of every image a stack's state under stateDir
// names to those stacks, sorted: what `stack prune` keeps and `stack
// images` shows as used.
func ImageUsers(stateDir string) (map[string][]string, error) {
	entries, err := os.ReadDir(stateDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state directory: %w", err)
	}
	users := map[string][]string{}
	for _, e := range entries {
		paths, err := PathsOf(stateDir, e.Name())
		if err != nil || !e.IsDir() {
			continue
		}
		st, err := ReadState(paths)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, c := range st.Containers {
			if c.Image != "" && !slices.Contains(users[c.Image], st.Stack) {
				users[c.Image] = append(users[c.Image], st.Stack)
			}
		}
	}
	for _, stacks := range users {
		slices.Sort(stacks)
	}
	return users, nil
}

// noPull is the Puller of a Config that has none.
func noPull(_ context.Context, _ *image.Store, src image.Source, _ image.PullOptions) (*image.Image, error) {
	return nil, &image.PullError{Source: src.String(), Err: errors.New("this process cannot pull images (no Config.Pull)")}
}

// unwrapPull drops the "pull REF: " the store puts first, which the
// caller's own prefix already says.
func unwrapPull(err error) error {
	if err == nil {
		return nil
	}
	var pe *image.PullError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// resolveUser finds the uid and gid of the container's user in its root.
func (c *container) resolveUser() error {
	uid, gid, err := image.LookupUser(c.layers, c.def.User)
	if err != nil {
		return fmt.Errorf("container %q: %w", c.def.Name, err)
	}
	if uid != c.def.UID || gid != c.def.GID {
		def := *c.def
		def.UID, def.GID = uid, gid
		c.def = &def
	}
	return nil
}

// withImageConfig is d with what it leaves unset taken from the image's
// config, as Compose applies it: the entrypoint, the command (which
// replaces only the image's Cmd, and which an entrypoint of the manifest's
// resets), the environment under the manifest's, the working directory and
// the user.
func withImageConfig(d *manifest.Container, cfg image.Config) (*manifest.Container, error) {
	out := *d
	entrypoint, cmd := cfg.Entrypoint, cfg.Cmd
	if d.Entrypoint != nil {
		entrypoint, cmd = d.Entrypoint, nil
	}
	if d.Command != nil {
		cmd = d.Command
	}
	out.Command = append(append([]string{}, entrypoint...), cmd...)
	if len(out.Command) == 0 || out.Command[0] == "" {
		return nil, errors.New("the image has no entrypoint or command, and the manifest gives none (set command)")
	}
	env := map[string]string{}
	for _, kv := range cfg.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	for k, v := range d.Env {
		env[k] = v
	}
	out.Env = env
	if out.Workdir == "" {
		out.Workdir = "/"
		if cfg.WorkingDir != "" {
			out.Workdir = path.Join("/", cfg.WorkingDir)
		}
	}
	if out.User == "" {
		out.User = cfg.User
	}
	// The manifest's check, [NONE] included, wins over the image's.
	if h := cfg.Healthcheck; out.Healthcheck == nil && h != nil {
		out.Healthcheck = manifest.ImageHealthcheck(h.Test, h.Interval, h.Timeout, h.StartPeriod, h.StartInterval, h.Retries)
	}
	return &out, nil
}

func openStore(dataDir string, unpackLimit int64) (*image.Store, error) {
	if dataDir == "" {
		return nil, fmt.Errorf("no data directory for the image store (STACK_DATA_DIR)")
	}
	store, err := image.Open(dataDir)
	if err != nil {
		return nil, err
	}
	if unpackLimit > 0 {
		store.SetUnpackLimit(unpackLimit)
	}
	return store, nil
}
