package main

import (
	"testing"
	"time"

	"github.com/crosscast/crosscast/sdk"
)

func TestNullDeliversEveryMessage(t *testing.T) {
	c := &channel{}
	res, err := c.Send(sdk.Call{Now: time.Now()}, []sdk.Message{{ID: "a"}, {ID: "b"}})
	if err != nil || len(res) != 2 || res[0].ID != "a" || res[1].Status != sdk.Delivered || res[1].ProviderID != "null-2" {
		t.Fatalf("%+v %v", res, err)
	}
}
