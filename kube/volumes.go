package kube

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/stack-containers/stack/manifest"
)

// claimSize is what a named volume's claim asks for: stack's volumes have
// no size, a claim must have one.
const claimSize = "1Gi"

// mapVolumes gives every named volume of the stack the name of its
// PersistentVolumeClaim: the same, lower-cased, '_' replaced by '-'.
// Two volumes that map to one name are refused.
func (cv *converter) mapVolumes() {
	cv.claims = map[string]string{}
	byK8s := map[string]string{}
	for _, v := range cv.st.Volumes {
		k := strings.ToLower(kubeName(v))
		path := "volumes." + v
		if errs := validation.IsDNS1123Subdomain(k); len(errs) > 0 {
			cv.problem(path, true, "Kubernetes refuses %q as a PersistentVolumeClaim name: %s; rename the volume", k, errs[0])
			continue
		}
		if other, ok := byK8s[k]; ok {
			cv.problem(path, true, "maps to the Kubernetes name %q, which volume %q has too: rename one of them", k, other)
			continue
		}
		byK8s[k] = v
		cv.claims[v] = k
	}
}

// volumeClaims makes a PersistentVolumeClaim per named volume: storage of
// the cluster's default class that outlives the Pods, as a volume
// outlives down.
func (cv *converter) volumeClaims() []Object {
	var objs []Object
	for _, v := range cv.st.Volumes {
		name := cv.claims[v]
		pvc := &corev1.PersistentVolumeClaim{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
			ObjectMeta: cv.meta(name, map[string]string{"app.kubernetes.io/part-of": cv.st.Name, "app.kubernetes.io/managed-by": "stack"}),
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources: corev1.VolumeResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(claimSize)},
				},
			},
		}
		comment := fmt.Sprintf("volumes.%s -> PersistentVolumeClaim %s: %s of the default storage class, ReadWriteOnce; change the size to what the data needs", v, name, claimSize)
		objs = append(objs, Object{Object: pvc, Kind: "PersistentVolumeClaim", Name: name, Comments: []string{comment}})
	}
	return objs
}

// volumeMount mounts the claim of named volume m in container k.
func (b *podBuild) volumeMount(c *manifest.Container, i int, m manifest.Mount, k *corev1.Container) {
	b.volumes++
	name := fmt.Sprintf("volume-%d", b.volumes)
	claim := b.cv.claims[m.Volume]
	b.spec.Volumes = append(b.spec.Volumes, corev1.Volume{
		Name:         name,
		VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}},
	})
	k.VolumeMounts = append(k.VolumeMounts, corev1.VolumeMount{Name: name, MountPath: m.Target, ReadOnly: m.ReadOnly})
	b.notes.add(fmt.Sprintf("%s[%d]", path(c, "mounts"), i),
		"volume %s: PersistentVolumeClaim %s, which starts empty: Kubernetes does not copy the image's %s into it as stack does", m.Volume, claim, m.Target)
}
