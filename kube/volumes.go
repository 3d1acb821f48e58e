package kube

import (
	"fmt"
	"os"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/stack-containers/stack/manifest"
)

// volumeSize is what each claim asks for: a stack volume has no size.
const volumeSize = "1Gi"

// mapVolumes gives every named volume its claim's name: lower-case, with
// '_' as '-', as Kubernetes names allow; two volumes that map to one name
// are refused.
func (cv *converter) mapVolumes() {
	cv.volumes = map[string]string{}
	byK8s := map[string]string{}
	for _, v := range cv.st.Volumes {
		k := strings.ToLower(kubeName(v))
		p := "volumes." + v
		if errs := validation.IsDNS1123Subdomain(k); len(errs) > 0 {
			cv.problem(p, true, "Kubernetes refuses %q as a PersistentVolumeClaim's name, which must hold only a-z, 0-9, '-' and '.', and start and end with a letter or digit: rename the volume", k)
			continue
		}
		if other, ok := byK8s[k]; ok {
			cv.problem(p, true, "maps to the Kubernetes name %q, which volume %q has too: rename one of them", k, other)
			continue
		}
		byK8s[k] = v
		cv.volumes[v] = k
	}
}

// claims makes a PersistentVolumeClaim for each named volume. A volume
// that containers of more than one Pod mount must be ReadWriteMany, which
// not every storage class offers; the others are ReadWriteOnce.
func (cv *converter) claims(groups []*group) []Object {
	pods := map[string][]string{}
	for _, g := range groups {
		for _, c := range g.members() {
			for _, m := range c.Mounts {
				if m.Volume != "" && !slices.Contains(pods[m.Volume], g.owner.Name) {
					pods[m.Volume] = append(pods[m.Volume], g.owner.Name)
				}
			}
		}
	}
	var objs []Object
	for _, v := range cv.st.Volumes {
		name := cv.volumes[v]
		mode := corev1.ReadWriteOnce
		comments := []string{fmt.Sprintf("volumes.%s -> PersistentVolumeClaim %s", v, name)}
		var notes notes
		if len(pods[v]) > 1 {
			mode = corev1.ReadWriteMany
			notes.add("volumes."+v, "mounted in the Pods of %s: ReadWriteMany, which the cluster's storage class must offer", strings.Join(pods[v], ", "))
		}
		notes.add("volumes."+v, "a stack volume has no size: the claim asks for %s; change it to fit", volumeSize)
		if name != v {
			notes.add("volumes."+v, "is named %q in Kubernetes, whose names are lower-case and have no '_'", name)
		}
		for _, n := range notes {
			comments = append(comments, "note: "+n.String())
		}
		cv.notes = append(cv.notes, notes...)
		objs = append(objs, Object{
			Kind: "PersistentVolumeClaim", Name: name, Comments: comments,
			Object: &corev1.PersistentVolumeClaim{
				TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
				ObjectMeta: cv.meta(name, map[string]string{"app.kubernetes.io/part-of": cv.st.Name, "app.kubernetes.io/managed-by": "stack"}),
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes: []corev1.PersistentVolumeAccessMode{mode},
					Resources: corev1.VolumeResourceRequirements{
						Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(volumeSize)},
					},
				},
			},
		})
	}
	return objs
}

// mounts maps mounts: a named volume to its claim, mounted once per Pod
// however many of its containers use it; a bind mount to a hostPath
// volume, which reads the node's files, not this machine's, hence the
// note. A missing host path is created as a directory, as stack does.
func (b *podBuild) mounts(c *manifest.Container, k *corev1.Container) {
	for i, m := range c.Mounts {
		p := fmt.Sprintf("%s[%d]", path(c, "mounts"), i)
		var name string
		if m.Volume != "" {
			name = b.claimVolume(m.Volume)
			b.notes.add(p, "volume %s at %s: Kubernetes does not copy what the image has there into an empty volume, as stack does", m.Volume, m.Target)
		} else {
			name = b.hostPathVolume(m.Source)
			b.notes.add(p, "bind mount of %s: a hostPath volume, which is the node's %s, not this machine's: put the files there, or use a PersistentVolumeClaim or a ConfigMap", m.Source, m.Source)
		}
		k.VolumeMounts = append(k.VolumeMounts, corev1.VolumeMount{Name: name, MountPath: m.Target, ReadOnly: m.ReadOnly})
	}
}

// claimVolume returns the name of the Pod's volume for a named volume's
// claim, adding it on first use.
func (b *podBuild) claimVolume(volume string) string {
	claim := b.cv.volumes[volume]
	for _, v := range b.spec.Volumes {
		if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == claim {
			return v.Name
		}
	}
	b.volumes++
	name := fmt.Sprintf("volume-%d", b.volumes)
	b.spec.Volumes = append(b.spec.Volumes, corev1.Volume{
		Name:         name,
		VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}},
	})
	return name
}

func (b *podBuild) hostPathVolume(source string) string {
	b.volumes++
	name := fmt.Sprintf("bind-%d", b.volumes)
	hostType := corev1.HostPathDirectoryOrCreate
	if fi, err := os.Stat(source); err == nil && !fi.IsDir() {
		hostType = corev1.HostPathFile
	}
	b.spec.Volumes = append(b.spec.Volumes, corev1.Volume{
		Name:         name,
		VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: source, Type: &hostType}},
	})
	return name
}
