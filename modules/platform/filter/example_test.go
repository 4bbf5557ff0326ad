package filter_test

import (
	"fmt"

	"github.com/gatehouse-dev/gatehouse/modules/platform/filter"
)

func ExampleParse() {
	e, err := filter.Parse(`userType eq "Employee" and emails[type eq "work"].value co "@example.com"`)
	if err != nil {
		fmt.Println(err)
		return
	}
	and := e.(filter.And)
	vp := and.Right.(filter.ValuePath)
	fmt.Println(vp.Attr)
	fmt.Println(filter.Format(vp.Filter))
	fmt.Println(filter.Format(e))

	_, err = filter.Parse(`userName equals "john"`)
	fmt.Println(err)
	// Output:
	// emails
	// type eq "work" and value co "@example.com"
	// userType eq "Employee" and emails[type eq "work" and value co "@example.com"]
	// invalid filter at offset 9: expected comparison operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr) after "userName", found "equals"
}

func ExampleParsePath() {
	p, err := filter.ParsePath(`emails[type eq "work"].value`)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s | %s | %s\n", p.Attr, filter.Format(p.Filter), p.Sub)
	// Output: emails | type eq "work" | value
}
