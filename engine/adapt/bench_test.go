package adapt_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/ferry-migrate/ferry/engine/adapt"
	"github.com/ferry-migrate/ferry/engine/vm"
	"github.com/ferry-migrate/ferry/engine/vm/vmtest"
)

// BenchmarkAdapt adapts a fresh overlay of the VMware-like image per
// iteration (attach, fstab, network, VMware tools purge, grub, initramfs
// regeneration, detach) and reports the seconds it took.
func BenchmarkAdapt(b *testing.B) {
	img := vmtest.Image(b, vmtest.VMware)
	h := vmtest.NewHost(b)
	ctx := context.Background()
	var total float64
	for i := 0; i < b.N; i++ {
		in, err := h.Create(ctx, vm.Spec{Name: fmt.Sprintf("bench-%d", i), Disks: []vm.Disk{{Image: img}}, Network: vm.Network{Mode: vm.NetIsolated}})
		if err != nil {
			b.Fatal(err)
		}
		res, err := adapt.Linux(ctx, []string{in.Spec.Disks[0].Overlay}, adapt.Options{Network: adapt.Network{CIDR: "10.0.2.0/24"}})
		if err != nil {
			b.Fatal(err)
		}
		total += res.Duration.Seconds()
	}
	b.ReportMetric(total/float64(b.N), "s-adapt")
}
