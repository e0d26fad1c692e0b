module segmentindex

go 1.26.8
