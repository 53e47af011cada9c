package vm_test

import (
	"context"
	"testing"

	"github.com/ferry-migrate/ferry/engine/health"
	"github.com/ferry-migrate/ferry/engine/vm"
	"github.com/ferry-migrate/ferry/engine/vm/vmtest"
)

// BenchmarkBoot boots the test image (one boot per iteration) and reports
// the seconds from qemu's start to the login prompt and to the first HTTP
// answer through the forwarded port (docs/benchmarks.md).
func BenchmarkBoot(b *testing.B) {
	img := vmtest.Image(b, vmtest.Base)
	h := vmtest.NewHost(b)
	ctx := context.Background()
	var login, http float64
	for i := 0; i < b.N; i++ {
		name := "bench"
		if _, err := h.Create(ctx, vm.Spec{Name: name, Disks: []vm.Disk{{Image: img}}, Network: vm.Network{Mode: vm.NetIsolated, Ports: []int{80}}}); err != nil {
			b.Fatal(err)
		}
		var rep health.Report
		in, err := h.Boot(ctx, name, bootTimeout, func(ctx context.Context, in *vm.Instance) error {
			rep = health.Run(ctx, checks(in, nil)...)
			return rep.Err()
		})
		if err != nil {
			b.Fatalf("%v\n%s", err, vmtest.Describe(in))
		}
		login += rep.Checks[0].Duration.Seconds()
		http += rep.Checks[1].Duration.Seconds()
		if i == 0 {
			b.Logf("accel %s: %s", in.Accel, in.AccelReason)
		}
		if err := h.Delete(ctx, name); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(login/float64(b.N), "s-to-login")
	b.ReportMetric(http/float64(b.N), "s-to-http")
}
