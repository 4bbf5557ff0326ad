package graph

// GlobalID lets the black-box tests build ids the way clients receive them.
var GlobalID = globalID
