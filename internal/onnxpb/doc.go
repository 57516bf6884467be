// Package onnxpb holds the ONNX protobuf messages (IR version 8), generated
// with protoc-gen-go v1.36.12 from onnx.proto3 (Apache-2.0, © ONNX Project
// Contributors) so that the graph builder depends on google.golang.org/protobuf
// alone.
//
// Regenerate with:
//
//	protoc --go_out=. --go_opt=paths=source_relative \
//	  --go_opt=Monnx.proto3=github.com/dapobench/dapobench/internal/onnxpb onnx.proto3
//	sed -i 's/^package onnx$/package onnxpb/' onnx.proto3.pb.go
package onnxpb
