package interruption

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/joinery-dev/joinery/internal/metrics"
)

var (
	receivedMessages = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "joinery_interruption_received_messages_total",
		Help: "Messages received from the interruption queue, by message type (spot_interrupted, scheduled_change, rebalance_recommendation, instance_stopped, instance_terminated, no_op).",
	}, []string{"message_type"})
	deletedMessages = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "joinery_interruption_deleted_messages_total",
		Help: "Messages deleted from the interruption queue once handled.",
	})
	messageQueueDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "joinery_interruption_message_queue_duration_seconds",
		Help:    "Time from an interruption event to the end of its handling (its time on the queue and in Joinery).",
		Buckets: prometheus.ExponentialBuckets(0.05, 2, 14),
	})
)

func init() {
	metrics.MustRegister(receivedMessages, deletedMessages, messageQueueDuration)
}
