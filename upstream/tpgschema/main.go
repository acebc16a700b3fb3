// Command tpgschema prints how the Terraform Google provider applies a change to each field of
// the GKE resources gpu-dask declares: "replace" (the field is ForceNew: delete and recreate),
// "update" (in place) or "computed" (set by the API only). pulumi-gcp is generated from this
// provider, and its diffs follow the same ForceNew flags.
//
//	cd upstream/tpgschema && go run . > ../../tests/data/tpg-container-schema.json
package main

import (
	"encoding/json"
	"os"
	"runtime/debug"

	"github.com/hashicorp/terraform-plugin-sdk/v2/helper/schema"
	"github.com/hashicorp/terraform-provider-google/google/services/container"
)

const providerModule = "github.com/hashicorp/terraform-provider-google"

func walk(prefix string, fields map[string]*schema.Schema, out map[string]string) {
	for name, field := range fields {
		path := prefix + name
		switch {
		case field.ForceNew:
			out[path] = "replace"
		case field.Computed && !field.Optional && !field.Required:
			out[path] = "computed"
		default:
			out[path] = "update"
		}
		if nested, ok := field.Elem.(*schema.Resource); ok {
			walk(path+".", nested.Schema, out)
		}
	}
}

func main() {
	version := "unknown"
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == providerModule {
				version = dep.Version
			}
		}
	}
	resources := map[string]*schema.Resource{
		"google_container_node_pool": container.ResourceContainerNodePool(),
		"google_container_cluster":   container.ResourceContainerCluster(),
	}
	fields := map[string]map[string]string{}
	for name, resource := range resources {
		paths := map[string]string{}
		walk("", resource.Schema, paths)
		fields[name] = paths
	}
	encoder := json.NewEncoder(os.Stdout)
	encoder.SetIndent("", " ")
	err := encoder.Encode(map[string]any{
		"generatedBy": "upstream/tpgschema (go run .)",
		"module":      providerModule,
		"version":     version,
		"resources":   fields,
	})
	if err != nil {
		panic(err)
	}
}
