module github.com/dapobench/dapobench

go 1.26.8

require (
	github.com/yalue/onnxruntime_go v1.27.0
	golang.org/x/text v0.44.0
	google.golang.org/protobuf v1.36.12
)

require github.com/nlpodyssey/gopickle v0.2.0

require golang.org/x/image v0.48.0
