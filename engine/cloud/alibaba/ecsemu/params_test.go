package ecsemu_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/aliyun/alibaba-cloud-sdk-go/services/ecs"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/sts"
	"github.com/ferry-migrate/ferry/engine/cloud/alibaba/ecsemu"
)

// sdkParams lists the parameter names a request struct of the SDK can send,
// repeated ones as NAME.N[.FIELD] (the SDK is generated from ECS's API
// metadata, so this is the API's own parameter list).
func sdkParams(req any) map[string]bool {
	out := map[string]bool{}
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, ok := f.Tag.Lookup("name")
			if !ok {
				continue
			}
			ft := f.Type
			for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice {
				ft = ft.Elem()
			}
			switch f.Tag.Get("type") {
			case "Repeated":
				if ft.Kind() == reflect.Struct {
					walk(ft, prefix+name+".N.")
				} else {
					out[prefix+name+".N"] = true
				}
			case "Struct":
				walk(ft, prefix+name+".")
			default:
				out[prefix+name] = true
			}
		}
	}
	walk(reflect.TypeOf(req).Elem(), "")
	return out
}

// TestParametersAreTheAPIs checks that every parameter the emulator accepts
// is one the real action has, and that it serves every action it claims.
func TestParametersAreTheAPIs(t *testing.T) {
	reqs := map[string]any{
		"RunInstances": ecs.CreateRunInstancesRequest(), "DescribeInstances": ecs.CreateDescribeInstancesRequest(),
		"StartInstance": ecs.CreateStartInstanceRequest(), "StopInstance": ecs.CreateStopInstanceRequest(),
		"DeleteInstance": ecs.CreateDeleteInstanceRequest(), "CreateDisk": ecs.CreateCreateDiskRequest(),
		"AttachDisk": ecs.CreateAttachDiskRequest(), "DetachDisk": ecs.CreateDetachDiskRequest(),
		"DeleteDisk": ecs.CreateDeleteDiskRequest(), "ResizeDisk": ecs.CreateResizeDiskRequest(),
		"DescribeDisks": ecs.CreateDescribeDisksRequest(), "CreateSnapshot": ecs.CreateCreateSnapshotRequest(),
		"DescribeSnapshots": ecs.CreateDescribeSnapshotsRequest(), "DeleteSnapshot": ecs.CreateDeleteSnapshotRequest(),
		"CreateImage": ecs.CreateCreateImageRequest(), "DescribeImages": ecs.CreateDescribeImagesRequest(),
		"DeleteImage": ecs.CreateDeleteImageRequest(), "CreateSecurityGroup": ecs.CreateCreateSecurityGroupRequest(),
		"AuthorizeSecurityGroup": ecs.CreateAuthorizeSecurityGroupRequest(), "DeleteSecurityGroup": ecs.CreateDeleteSecurityGroupRequest(),
		"DescribeSecurityGroups":         ecs.CreateDescribeSecurityGroupsRequest(),
		"DescribeSecurityGroupAttribute": ecs.CreateDescribeSecurityGroupAttributeRequest(),
		"DescribeVpcs":                   ecs.CreateDescribeVpcsRequest(), "DescribeVSwitches": ecs.CreateDescribeVSwitchesRequest(),
		"DescribeRegions": ecs.CreateDescribeRegionsRequest(), "DescribeZones": ecs.CreateDescribeZonesRequest(),
		"GetInstanceConsoleOutput": ecs.CreateGetInstanceConsoleOutputRequest(), "DescribeUserData": ecs.CreateDescribeUserDataRequest(),
		"DescribeInstanceTypes":     ecs.CreateDescribeInstanceTypesRequest(),
		"DescribeAccountAttributes": ecs.CreateDescribeAccountAttributesRequest(),
	}
	served := ecsemu.Actions()
	for _, a := range served {
		req, ok := reqs[a]
		if !ok {
			t.Errorf("the emulator serves %s, which this test does not check", a)
			continue
		}
		api := sdkParams(req)
		for _, p := range ecsemu.ActionParams("ecs", a) {
			if !api[p] {
				t.Errorf("%s: the emulator accepts %s, which the API does not have", a, p)
			}
		}
	}
	for name, req := range map[string]any{"AssumeRole": sts.CreateAssumeRoleRequest(), "GetCallerIdentity": sts.CreateGetCallerIdentityRequest()} {
		api := sdkParams(req)
		for _, p := range ecsemu.ActionParams("sts", name) {
			if !api[p] {
				t.Errorf("STS %s: the emulator accepts %s, which the API does not have", name, p)
			}
		}
	}
	if len(served) != len(reqs) {
		t.Errorf("serves %d actions: %s", len(served), strings.Join(served, ", "))
	}
}
