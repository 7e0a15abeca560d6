package handlers

import (
	"context"
	"strconv"

	"github.com/gofiber/fiber/v3"

	"github.com/qingfeng-zj/qingfeng/triage"
)

// CalendarAdmin adds holiday calendars (years after the release, or corrections).
type CalendarAdmin interface {
	// Years lists the years the working-day calendar knows.
	Years() []int
	// AddYear validates, stores and loads one year in the holiday-cn JSON format and
	// returns its year.
	AddYear(ctx context.Context, data []byte, by string) (int, error)
}

// calendarYears is GET /v1/admin/calendar.
func (s *Server) calendarYears(c fiber.Ctx) error {
	return c.JSON(fiber.Map{"years": s.d.Calendar.Years()})
}

// putCalendarYear is PUT /v1/admin/calendar/{year}: the body is the year's calendar
// in the holiday-cn format (as in shared/data/holidays-cn).
func (s *Server) putCalendarYear(c fiber.Ctx) error {
	want, err := strconv.Atoi(c.Params("year"))
	if err != nil || want < 2000 || want > 2199 {
		return fieldInvalid("year", "invalid_year", "年份应为2000–2199之间的整数", "a year between 2000 and 2199")
	}
	if mt, _ := mediaType(c); mt != fiber.MIMEApplicationJSON {
		return errWantJSON
	}
	body, err := readBody(c, s.d.MaxJSONBytes)
	if err != nil {
		return err
	}
	year, err := s.addCalendarYear(c, body, want)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"year": year, "years": s.d.Calendar.Years()})
}

// addCalendarYear checks one year's calendar (want: the year it must be, 0 for any),
// stores and loads it, and records that it did (the API's PUT and the console's upload).
func (s *Server) addCalendarYear(c fiber.Ctx, body []byte, want int) (int, error) {
	// The strict decoder checks the shape (exact keys, no duplicates, no unknown fields);
	// triage checks the content and loads the same bytes.
	var shape calendarYearRequest
	if err := decodeJSONBytes(body, &shape); err != nil {
		return 0, err
	}
	if year, err := triage.CheckYear(body); err != nil {
		return 0, err
	} else if want != 0 && year != want {
		return 0, fieldInvalid("year", "year_mismatch", "路径中的年份与数据中的年份不一致", "the path's year differs from the data's")
	}
	year, err := s.d.Calendar.AddYear(c.Context(), body, principalOf(c).user.ID)
	if err != nil {
		return 0, err
	}
	s.recordChange(c, "calendar.year.put", "", map[string]string{"year": strconv.Itoa(year)})
	return year, nil
}

// calendarYearRequest is the holiday-cn file format, as published (with its $schema, $id
// and papers), for the strict decoder.
type calendarYearRequest struct {
	Schema string   `json:"$schema"`
	ID     string   `json:"$id"`
	Year   *int     `json:"year"`
	Papers []string `json:"papers"`
	Days   []struct {
		Name     string `json:"name"`
		Date     string `json:"date"`
		IsOffDay *bool  `json:"isOffDay"`
	} `json:"days"`
}
