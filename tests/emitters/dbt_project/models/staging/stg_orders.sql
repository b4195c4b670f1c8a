select
    id as order_id,
    customer_id,
    cast(amount as decimal(10, 2)) as amount,
    status
from {{ source('shop', 'raw_orders') }}
